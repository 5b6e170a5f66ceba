import Conveyor
import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Foundation
import Logging
import ServiceLifecycle

/// Hosts the actors of the types in its ``ActorRegistry`` (DESIGN §6): a swift-service-lifecycle `Service` that
/// runs beside a ``ConveyorWorker`` in the same `ServiceGroup`.
///
/// It subscribes to the mailbox of every live actor of its types. Mailboxes have a single active consumer, so
/// exactly one host in the fleet gets an actor's messages; on its first message that host takes the actor on in
/// Redis (a different previous host counts as a restart, up to ``ActorOptions/maxRestarts``), runs the
/// initialiser (and ``DurableActor/restore(_:)`` with the last snapshot), and runs the calls. The others wait as
/// standby consumers: when the host dies the broker hands the mailbox, and the calls it had not acknowledged,
/// to one of them. A call is acknowledged only after its outcome is in Redis.
///
/// New actors are learned from `P actor-events` and from a rescan of `P actors` every ``rescanInterval``.
/// On graceful shutdown it stops consuming and gives its actors up, so the next host's takeover is no restart.
public final class ConveyorActorHost: Service, Sendable {
    public let configuration: ConveyorConfiguration
    public let registry: ActorRegistry
    /// The name this host writes as an actor's `host`; unique per process.
    public let hostID: String
    public let rescanInterval: Duration
    let logger: Logger
    let session = LockedValue<ActorHostSession?>(nil)
    let stopRequested = LockedValue(false)

    /// A host for `registry`'s types on the servers of `configuration`. Nothing connects until ``run()``.
    public init(
        configuration: ConveyorConfiguration, registry: ActorRegistry, hostID: String? = nil,
        rescanInterval: Duration = .seconds(2)
    ) {
        self.configuration = configuration
        self.registry = registry
        let info = ProcessInfo.processInfo
        self.hostID = hostID ?? "\(info.hostName):\(info.processIdentifier):\(TaskID.make().prefix(8))"
        self.rescanInterval = rescanInterval
        var logger = configuration.logger
        logger[metadataKey: "conveyor.actor-host"] = .string(self.hostID)
        self.logger = logger
    }

    /// Connects, hosts actors until a graceful shutdown (or cancellation), gives them up, and disconnects.
    ///
    /// - Throws: the first connect error of either server, or ``ConveyorError/invalidConfiguration(_:)``.
    public func run() async throws {
        let client = try await ConveyorClient.connect(configuration)
        let consumerConnection: AMQPConnection
        let redis: RedisClient
        do {
            let servers = try await configuration.connectServers(connectionName: "conveyor-actor-host \(hostID)")
            consumerConnection = servers.broker
            redis = servers.redis
        } catch {
            await client.close()
            throw error
        }
        let session = ActorHostSession(
            host: self, system: ConveyorActorSystem(client: client), consumer: consumerConnection,
            store: ActorStore(redis: redis, keys: client.store.keys))
        self.session.withLock { $0 = session }
        if stopRequested.withLock({ $0 }) { session.stop() }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await session.run()
            } onCancel: {
                session.stop()
            }
        } onGracefulShutdown: {
            session.stop()
        }
        self.session.withLock { $0 = nil }
        await consumerConnection.close()
        await redis.close()
        await client.close()
    }

    /// Stops hosting (as a graceful shutdown does); ``run()`` returns when every actor is given up.
    public func shutdown() {
        stopRequested.withLock { $0 = true }
        session.withLock { $0 }?.stop()
    }

    /// The ids of the actors this host runs now (the ones whose mailbox it is the active consumer of).
    public var activeActorIDs: [String] { session.withLock { $0 }?.activeIDs ?? [] }
}

/// One ``ConveyorActorHost/run()``: the subscriptions to mailboxes, the event and rescan loops.
final class ActorHostSession: Sendable {
    let host: ConveyorActorHost
    let system: ConveyorActorSystem
    /// The connection every mailbox consumer uses (publishes go over the system's client).
    let consumer: AMQPConnection
    /// Records and results are written over this connection, not the client's, so answers do not queue behind
    /// this host's own calls to other actors.
    let store: ActorStore
    let runners = LockedValue<[String: ActorRunner]>([:])
    let starts: AsyncStream<String>
    let startContinuation: AsyncStream<String>.Continuation
    let stopped = LockedValue(false)

    var logger: Logger { host.logger }

    init(host: ConveyorActorHost, system: ConveyorActorSystem, consumer: AMQPConnection, store: ActorStore) {
        self.host = host
        self.system = system
        self.consumer = consumer
        self.store = store
        (starts, startContinuation) = AsyncStream.makeStream(of: String.self)
    }

    var activeIDs: [String] {
        runners.withLock { Array($0.values) }.filter(\.isActive).map(\.id.rawValue).sorted()
    }

    func stop() {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        startContinuation.finish()
        for runner in runners.withLock({ Array($0.values) }) { runner.stop() }
    }

    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followEvents() }
            group.addTask { await self.rescanLoop() }
            for await id in starts {
                guard let runner = await prepare(id) else { continue }
                group.addTask {
                    await runner.run()
                    self.runners.withLock { runners in
                        if runners[id] === runner { runners[id] = nil }
                    }
                }
            }
            // Stopped: the runners end on their own (their consumers are cancelled); the loops are cancelled.
            while !runners.withLock({ $0.isEmpty }) { try? await Task.sleep(for: .milliseconds(20)) }
            group.cancelAll()
        }
    }

    /// A runner for actor `id` if this host should subscribe to its mailbox (live, of a registered type, not
    /// subscribed yet), registered in ``runners``.
    func prepare(_ id: String) async -> ActorRunner? {
        if stopped.withLock({ $0 }) || runners.withLock({ $0[id] != nil }) { return nil }
        let record: ActorRecord
        do {
            guard let found = try await store.record(id), found.isLive else { return nil }
            record = found
        } catch {
            logger.debug("actor record read failed", metadata: ["actor": .string(id), "error": "\(error)"])
            return nil
        }
        guard let entry = host.registry.entry(record.type) else { return nil }
        let runner = ActorRunner(session: self, record: record, entry: entry)
        let added = runners.withLock { runners in
            if runners[id] != nil || stopped.withLock({ $0 }) { return false }
            runners[id] = runner
            return true
        }
        return added ? runner : nil
    }

    /// `created <id> <type>` starts a subscription at once; `killed <id>` and `dead <id>` end it.
    func followEvents() async {
        do {
            let subscription = try await system.client.redis.subscriber.subscribe([store.keys.actorEvents])
            for await message in subscription {
                let words = message.string.split(separator: " ")
                guard words.count >= 2 else { continue }
                let id = String(words[1])
                switch words[0] {
                case "created": startContinuation.yield(id)
                case "killed", "dead":
                    runners.withLock { $0[id] }?.end(
                        type: words[0] == "killed" ? ActorFailureType.killed : ActorFailureType.dead,
                        reason: nil)
                default: break
                }
            }
        } catch {
            logger.warning("actor events unavailable; relying on rescans", metadata: ["error": "\(error)"])
        }
    }

    func rescanLoop() async {
        while !Task.isCancelled && !stopped.withLock({ $0 }) {
            do {
                let ids = try await store.liveIDs()
                let live = Set(ids)
                for id in ids where runners.withLock({ $0[id] == nil }) { startContinuation.yield(id) }
                // An actor that left `P actors` while its event was missed has ended. Its record says so: an id
                // missing from the set read above may also be an actor spawned since.
                for (id, runner) in runners.withLock({ $0 }) where !live.contains(id) {
                    let record: ActorRecord?
                    do {
                        record = try await store.record(id)
                    } catch {
                        continue
                    }
                    if record?.isLive != true {
                        let type = record?.status == "dead" ? ActorFailureType.dead : ActorFailureType.killed
                        runner.end(type: type, reason: record?.reason ?? "its record is gone")
                    }
                }
            } catch {
                logger.debug("actor rescan failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: host.rescanInterval)
        }
    }
}

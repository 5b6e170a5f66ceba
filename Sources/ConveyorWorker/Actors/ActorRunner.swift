import Conveyor
import ConveyorAMQP
import ConveyorIO
import DequeModule
import Distributed
import Foundation
import Logging

/// One actor's subscription on one host: standby until the broker makes it the mailbox's active consumer, then
/// the actor's host, running its calls in lanes (the default one and one per concurrency group).
final class ActorRunner: Sendable {
    let id: ConveyorActorID
    let record: ActorRecord
    let entry: ActorTypeEntry
    /// Strong: the session forgets the runner when its ``run()`` returns.
    let session: ActorHostSession
    let lanes: [String: ActorLane]
    let defaultLane: ActorLane
    let groupOfMethod: [String: String]

    struct State {
        var consumer: AMQPConsumer?
        /// The instance, once this host took the actor on.
        var instance: (any DistributedActor)?
        /// Set when the actor ended (killed, dead) or another host took it over: no call runs any more.
        var ended: (type: String, reason: String)?
        var fenced = false
        var stopping = false
        /// Deliveries received and not settled yet.
        var inFlight = 0
        var callsSinceSnapshot = 0
    }
    let state = LockedValue(State())

    init(session: ActorHostSession, record: ActorRecord, entry: ActorTypeEntry) {
        self.session = session
        self.record = record
        self.entry = entry
        self.id = ConveyorActorID(record.id)
        self.defaultLane = ActorLane(limit: record.options.maxConcurrency)
        var lanes: [String: ActorLane] = [:]
        for group in record.options.concurrencyGroups { lanes[group.name] = ActorLane(limit: group.maxConcurrency) }
        self.lanes = lanes
        self.groupOfMethod = record.options.groupOfMethod
    }

    var isActive: Bool { state.withLock { $0.instance != nil && $0.ended == nil } }
    var logger: Logger { session.logger }
    var hostID: String { session.host.hostID }

    /// Graceful stop: cancel the subscription (unacknowledged calls go back to the mailbox for the next host).
    func stop() {
        let consumer = state.withLock { state in
            state.stopping = true
            return state.consumer
        }
        // stop() is called from synchronous shutdown handlers; the cancel is a message to the connection's
        // thread, and run() observes its effect (the sequence ends), so nothing awaits this task.
        if let consumer { Task { await consumer.cancel() } }
    }

    /// The actor ended (an event or a rescan said so, or this host found out): refuse every call from now on.
    func end(type: String, reason: String?) {
        state.withLock { state in
            if state.ended == nil { state.ended = (type, reason ?? "") }
        }
    }

    /// Prefetch: exactly the calls that may run at once when the mailbox is bounded (so the bound counts the
    /// waiting calls), else room for a window of calls beyond that.
    var prefetch: UInt16 {
        let running = record.options.totalConcurrency
        let window = record.options.maxPendingCalls == nil ? max(running, 128) : running
        return UInt16(clamping: window)
    }

    func run() async {
        let consumer: AMQPConsumer
        do {
            consumer = try await session.consumer.consume(
                queue: id.queue, prefetch: prefetch, consumerTag: "\(hostID).\(id.rawValue)")
        } catch {
            logger.debug(
                "actor mailbox subscribe failed", metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
            return
        }
        let stopping = state.withLock { state in
            state.consumer = consumer
            return state.stopping
        }
        if stopping { await consumer.cancel() }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watchEnd(consumer) }
            do {
                for try await delivery in consumer {
                    state.withLock { $0.inFlight += 1 }
                    if state.withLock({ $0.stopping }) {
                        // Stopping: what the subscription still yields goes back to the mailbox for the next host.
                        requeue(delivery)
                        continue
                    }
                    if state.withLock({ $0.instance == nil && $0.ended == nil }) { await activate() }
                    let kind = delivery.properties.headers[ActorHeader.kind]?.stringValue ?? ""
                    if state.withLock({ $0.ended != nil }) || kind != "actor-call" {
                        group.addTask { await self.settleOutside(delivery, kind: kind) }
                        continue
                    }
                    let method = delivery.properties.headers[ActorHeader.method]?.stringValue ?? ""
                    let lane = groupOfMethod[ActorMethodName.base(of: method)].flatMap { lanes[$0] } ?? defaultLane
                    if lane.submit(delivery) {
                        group.addTask {
                            await withDiscardingTaskGroup { records in
                                while let next = lane.next() {
                                    if self.state.withLock({ $0.stopping }) {
                                        self.requeue(next)
                                    } else {
                                        await self.execute(next, records: &records)
                                    }
                                }
                            }
                        }
                    }
                }
            } catch {
                logger.debug("actor mailbox ended", metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
            }
            // The calls running now finish and are recorded (a graceful stop does not fail them); the ones
            // still waiting in the lanes are requeued; the end watcher sees `stopping` and returns.
            state.withLock { $0.stopping = true }
        }
        let (hosted, ended, fenced) = state.withLock { ($0.instance != nil, $0.ended != nil, $0.fenced) }
        if hosted && !ended && !fenced {
            do {
                try await session.store.release(id.rawValue, host: hostID)
            } catch {
                logger.warning("could not give the actor up", metadata: ["actor": .string(id.rawValue)])
            }
        }
        session.system.unhost(id)
    }

    /// Takes the actor on in Redis and makes the instance (restoring the snapshot of a durable one).
    func activate() async {
        guard
            let outcome = await withStateRetry({
                try await self.session.store.host(self.id.rawValue, host: self.hostID)
            })
        else { return }
        do {
            switch outcome {
            case .host(let restarts, let arguments, let snapshot):
                let instance = try await entry.make(session.system, id, arguments)
                if let snapshot, let restore = entry.restore { try await restore(instance, snapshot) }
                state.withLock { $0.instance = instance }
                logger.info(
                    "hosting actor",
                    metadata: [
                        "actor": .string(id.rawValue), "type": .string(record.type), "restarts": "\(restarts)",
                        "restored": "\(snapshot != nil)",
                    ])
            case .killed(let reason): end(type: ActorFailureType.killed, reason: reason)
            case .dead(let reason): end(type: ActorFailureType.dead, reason: reason)
            case .missing: end(type: ActorFailureType.dead, reason: "its record is gone")
            }
        } catch {
            // The initialiser (or restore) threw: the actor cannot live.
            let reason = "its initialiser failed: \(TaskFailure(error))"
            _ = try? await session.store.end(id.rawValue, status: "dead", reason: reason)
            end(type: ActorFailureType.dead, reason: reason)
        }
    }

    /// A creation message (answered with the actor's id) or any message once the actor ended (refused).
    func settleOutside(_ delivery: AMQPDelivery, kind: String) async {
        if state.withLock({ $0.fenced || ($0.instance == nil && $0.ended == nil) }) {
            // Another host has the actor, or this one stopped before taking it on: the message is for whoever
            // hosts it next.
            requeue(delivery)
            return
        }
        let call = delivery.properties.correlationId ?? ""
        let replyTo = delivery.properties.replyTo ?? ""
        let ended = state.withLock { $0.ended }
        let meta: CeleryResultMeta
        if let ended {
            let reason =
                ended.reason.isEmpty ? (try? await session.store.record(id.rawValue))?.reason ?? "" : ended.reason
            meta = Self.failureMeta(call, type: ended.type, message: reason.isEmpty ? ended.type : reason)
        } else if kind == "actor-create" {
            meta = CeleryResultMeta(
                taskID: call, status: "SUCCESS", result: .object(["actor_id": .string(id.rawValue)]))
        } else {
            meta = Self.failureMeta(call, type: "UnknownMessage", message: "not an actor message: kind '\(kind)'")
        }
        if !call.isEmpty {
            let stored: Void? = await withStateRetry {
                try await self.session.store.refuse(call: call, meta: meta.jsonBytes(), replyTo: replyTo)
            }
            if stored == nil { return }
        }
        settle(delivery)
    }

    /// Runs one call and records its outcome (with the snapshot after it), then acknowledges it.
    ///
    /// The outcome of a call to an actor that is not durable is recorded in `records`, so the lane's next call
    /// runs while it is written: a lane's throughput is not bound by a Redis round trip. A durable actor's
    /// record is awaited, so its snapshots are written in call order.
    func execute(_ delivery: AMQPDelivery, records: inout DiscardingTaskGroup) async {
        let call = delivery.properties.correlationId ?? ""
        let method = delivery.properties.headers[ActorHeader.method]?.stringValue ?? ""
        let (instance, ended) = state.withLock { ($0.instance, $0.ended != nil) }
        guard let instance, !ended else {
            await settleOutside(delivery, kind: "actor-call")
            return
        }
        // A call delivered again whose outcome is recorded ran on the previous host: its effect is in the
        // snapshot (or gone with a non-durable actor's state); it does not run twice.
        if delivery.redelivered {
            if await withStateRetry({ try await self.session.store.hasOutcome(call: call) }) == true {
                settle(delivery)
                return
            }
            // Delivered before (to a host that died, say) without an outcome: it may have run there too.
            logger.notice(
                "running a redelivered call again", metadata: ["actor": .string(id.rawValue), "call": .string(call)])
        }
        let outcome = await invoke(instance, method: method, body: delivery.body)
        let meta: CeleryResultMeta
        switch outcome {
        case .value(let value): meta = CeleryResultMeta(taskID: call, status: "SUCCESS", result: value)
        case .error(let type, let message): meta = Self.failureMeta(call, type: type, message: message)
        }
        var snapshot: [UInt8]? = nil
        if let takeSnapshot = entry.snapshot {
            let due = state.withLock { state in
                state.callsSinceSnapshot += 1
                if state.callsSinceSnapshot >= entry.snapshotEvery {
                    state.callsSinceSnapshot = 0
                    return true
                }
                return false
            }
            if due {
                do {
                    snapshot = try await takeSnapshot(instance).jsonBytes()
                } catch {
                    logger.warning("snapshot failed", metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
                }
            }
        }
        if entry.snapshot == nil {
            records.addTask { await self.record(delivery, meta: meta, snapshot: nil) }
        } else {
            await record(delivery, meta: meta, snapshot: snapshot)
        }
    }

    /// Writes a call's outcome (and snapshot) if this host still hosts the actor, then acknowledges the call.
    func record(_ delivery: AMQPDelivery, meta: CeleryResultMeta, snapshot: [UInt8]?) async {
        let call = delivery.properties.correlationId ?? ""
        let replyTo = delivery.properties.replyTo ?? ""
        let snapshotBytes = snapshot
        let recorded = await withStateRetry {
            try await self.session.store.record(
                actor: self.id.rawValue, host: self.hostID, call: call, meta: meta.jsonBytes(), replyTo: replyTo,
                snapshot: snapshotBytes)
        }
        guard let recorded else { return }
        if !recorded {
            // Another host took the actor over: its state is the one that counts now; leave this call to it.
            logger.warning("actor taken over by another host", metadata: ["actor": .string(id.rawValue)])
            let consumer = state.withLock { state in
                state.fenced = true
                state.ended = state.ended ?? ("Fenced", "taken over")
                return state.consumer
            }
            _ = delivery.nack(requeue: true)
            state.withLock { $0.inFlight -= 1 }
            await consumer?.cancel()
            return
        }
        settle(delivery)
    }

    func invoke(
        _ instance: any DistributedActor, method: String, body: [UInt8]
    ) async
        -> ConveyorResultHandler.Outcome
    {
        let arguments: [JSONValue]
        var generics: [String] = []
        switch try? JSONValue(json: body) {
        case .array(let values)?: arguments = values
        case .object(let object)?:
            if case .array(let values)? = object["args"] { arguments = values } else { arguments = [] }
            if case .array(let names)? = object["generics"] { generics = names.compactMap(\.stringValue) }
        default:
            return .error(type: "ActorInvocationError", message: "the call's body is not a JSON array of arguments")
        }
        var decoder = ConveyorInvocationDecoder(arguments: arguments, generics: generics)
        let handler = ConveyorResultHandler()
        do {
            try await Self.execute(
                on: instance, system: session.system, method: method, decoder: &decoder, handler: handler)
        } catch {
            return .error(type: String(describing: type(of: error)), message: String(describing: error))
        }
        return handler.result ?? .value(.null)
    }

    static func execute<Act: DistributedActor>(
        on actor: Act, system: ConveyorActorSystem, method: String, decoder: inout ConveyorInvocationDecoder,
        handler: ConveyorResultHandler
    ) async throws {
        try await system.executeDistributedTarget(
            on: actor, target: RemoteCallTarget(method), invocationDecoder: &decoder, handler: handler)
    }

    static func failureMeta(_ call: String, type: String, message: String) -> CeleryResultMeta {
        CeleryResultMeta(
            taskID: call, status: "FAILURE",
            result: CeleryResultMeta.exceptionResult(TaskFailure(type: type, message: message)))
    }

    /// Gives a call that has not started back to the mailbox.
    func requeue(_ delivery: AMQPDelivery) {
        _ = delivery.nack(requeue: true)
        state.withLock { $0.inFlight -= 1 }
    }

    func settle(_ delivery: AMQPDelivery) {
        _ = delivery.ack()
        state.withLock { $0.inFlight -= 1 }
    }

    /// Once the actor ended: an active host refuses what is left in the mailbox, then deletes it; a standby one
    /// just unsubscribes.
    func watchEnd(_ consumer: AMQPConsumer) async {
        while !Task.isCancelled && !state.withLock({ $0.stopping }) {
            let (ended, active, inFlight, fenced) = state.withLock {
                ($0.ended != nil, $0.instance != nil, $0.inFlight, $0.fenced)
            }
            if ended && !fenced {
                if !active {
                    await consumer.cancel()
                    return
                }
                let waiting = (try? await session.consumer.queueInfo(id.queue))?.messageCount
                if waiting == nil {
                    return
                } else if waiting == 0 && inFlight == 0 {
                    _ = try? await session.consumer.deleteQueue(id.queue)
                    await consumer.cancel()
                    return
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Repeats a Redis state write while Redis is unreachable (holding the message unacknowledged), as the task
    /// worker does; `nil` once this runner stops.
    func withStateRetry<T: Sendable>(_ body: @Sendable () async throws -> T) async -> T? {
        var backoff = Duration.milliseconds(50)
        while true {
            do {
                return try await body()
            } catch {
                if state.withLock({ $0.stopping }) || Task.isCancelled { return nil }
                logger.warning(
                    "actor state write failed; retrying",
                    metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }
}

/// The calls of one concurrency group waiting to run, in arrival order, and how many run now.
final class ActorLane: Sendable {
    let limit: Int
    private let state = LockedValue<(waiting: Deque<AMQPDelivery>, running: Int)>(([], 0))

    init(limit: Int) { self.limit = max(1, limit) }

    /// Queues `delivery`; `true` when the caller should start one more drainer (``next()`` until `nil`).
    func submit(_ delivery: AMQPDelivery) -> Bool {
        state.withLock { state in
            state.waiting.append(delivery)
            if state.running < limit {
                state.running += 1
                return true
            }
            return false
        }
    }

    /// The next call for a drainer, or `nil` (the drainer then ends).
    func next() -> AMQPDelivery? {
        state.withLock { state in
            if let next = state.waiting.popFirst() { return next }
            state.running -= 1
            return nil
        }
    }
}

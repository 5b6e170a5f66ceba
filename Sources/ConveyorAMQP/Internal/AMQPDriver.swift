import CRabbitMQ
import ConveyorIO
import DequeModule
import Foundation
import Logging
import Synchronization

/// The thread side of one ``AMQPConnection``: owns the rabbitmq-c connection and does all its I/O.
///
/// rabbitmq-c is blocking and not thread-safe, so one thread (a ``ConnectionRunner``'s) does everything: drains
/// the inbox, writes publishes and acks, reads frames, runs the synchronous RPCs, and resumes callers at the end
/// of each pass. Channel 1 carries topology RPCs, channel 2 publishes in confirm mode, and each consumer has a
/// channel of its own.
// Safe: every `var` is touched only on the runner's thread, the owner of the C connection, except `closed`, which
// `gate` guards. Other threads use only `inbox`, `wakeup`, `gate`, `shared` and `consumerIDs`, which synchronise
// themselves.
final class AMQPDriver: ConnectionDriver, @unchecked Sendable {
    static let controlChannel: amqp_channel_t = 1
    static let publishChannel: amqp_channel_t = 2
    static let firstConsumerChannel: amqp_channel_t = 3
    /// Messages written per pass before the thread reads frames again, so confirms and deliveries keep flowing.
    static let writeBudget = 2048
    /// Frames read per pass before the thread writes again.
    static let readBudget = 4096

    let configuration: AMQPConfiguration
    var logger: Logger
    let wakeup: Wakeup
    let inbox: Inbox<Command>
    let consumerIDs = Atomic<UInt64>(0)

    /// Guards `closed`: a command is either refused or pushed before `shutdown` drains the inbox for good.
    private let gate = Lock()
    private var closed = false

    struct Shared: Sendable {
        var blockedReason: String?
        var url: AMQPURL?
    }

    let shared = LockedValue(Shared())

    // Thread-owned state.
    var connection: amqp_connection_state_t?
    let pool: UnsafeMutablePointer<amqp_pool_t>
    var exchangeCache = BytesCache()
    var routingKeyCache = BytesCache()
    var urlIndex = 0
    var hasConnected = false
    var nextIncarnation: UInt64 = 1
    var backlog: Deque<Command> = []
    /// Topology and consume commands waiting for a connection.
    var parked: Deque<Command> = []
    // Hot per-message state: exclusivity is guaranteed by the single owner thread, so skip the runtime checks.
    @exclusivity(unchecked) var publisher = PublisherState()
    /// Requests not yet completed, in arrival order (for deadlines).
    var activeRequests: Deque<PublishRequest> = []
    /// Requests completed in this pass, resumed at its end.
    @exclusivity(unchecked) var completed: [PublishRequest] = []
    var drainWaiters: [CheckedContinuation<Void, Never>] = []
    var consumers: [UInt64: ConsumerState] = [:]
    /// Consumers by channel number, for the frame loop.
    var consumersByChannel: [ConsumerState?] = []
    /// Consumers with deliveries in `batch` this pass.
    @exclusivity(unchecked) var delivering: [ConsumerState] = []
    var topology = TopologyRecord()
    /// A channel must be reopened or a consumer resubscribed once the frames queued for it are read.
    var needsRepair = false
    var lastDeadlineCheck = ContinuousClock.now

    init(configuration: AMQPConfiguration) {
        self.configuration = configuration
        var logger = configuration.logger
        logger[metadataKey: "amqp.connection"] = "\(configuration.connectionName)"
        self.logger = logger
        self.wakeup = Wakeup()
        self.inbox = Inbox(wakeup: wakeup)
        pool = .allocate(capacity: 1)
        pool.initialize(to: amqp_pool_t())
        init_amqp_pool(pool, 64 * 1024)
    }

    deinit {
        if let connection { amqp_destroy_connection(connection) }
        empty_amqp_pool(pool)
        pool.deinitialize(count: 1)
        pool.deallocate()
    }

    // MARK: - Callers' side

    /// Queues `command` for the thread; false once the connection is closed (the command was not queued).
    func submit(_ command: Command) -> Bool {
        gate.withLock {
            guard !closed else { return false }
            inbox.push(command)
            return true
        }
    }

    var isClosed: Bool { gate.withLock { closed } }

    // MARK: - ConnectionDriver

    func serve(maxWait: Duration) throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        if !parked.isEmpty {
            backlog.insert(contentsOf: parked, at: backlog.startIndex)
            parked.removeAll()
        }
        backlog.append(contentsOf: inbox.drain())
        try runBacklog()
        try flushUnsent()
        try flushSettlements()
        let read = try readFrames()
        try repair()
        finishPass()

        let busy =
            read >= Self.readBudget || (publisher.open && !publisher.unsent.isEmpty) || needsRepair
            || !inbox.isEmpty || amqp_frames_enqueued(connection) != 0 || amqp_data_in_buffer(connection) != 0
        if !busy {
            recyclePool()
            let socket = amqp_get_sockfd(connection)
            let ready = Poller.wait(
                [(socket, true, false), (wakeup.readFD, true, false)], timeoutMilliseconds: maxWait.pollMilliseconds)
            if ready[1].readable { wakeup.drain() }
            if ready[0].readable || ready[0].failed {
                _ = try readFrames()
                try repair()
                finishPass()
            }
        }
        checkDeadlines(connected: true, reason: nil)
        amqp_maybe_release_buffers(connection)
        recyclePool()
    }

    func serveDisconnected(lastError: any Error) {
        backlog.append(contentsOf: inbox.drain())
        while let command = backlog.popFirst() {
            switch command {
            case .publish(let request): accept(request)
            case .settle: break  // Its channel is gone; the broker redelivers the message.
            case .topology, .consume: parked.append(command)
            case .setPrefetch(let id, let prefetch, let continuation):
                consumers[id]?.prefetch = prefetch
                continuation.resume()
            case .cancel(let id, let continuation):
                if let consumer = consumers[id] { remove(consumer, error: nil) }
                continuation.resume()
            case .drain(let continuation): drainWaiters.append(continuation)
            }
        }
        checkDeadlines(connected: false, reason: "\(lastError)")
        finishPass()
    }

    func connectionLost(_ error: any Error) {
        destroyConnection()
        var retry: Deque<UnsentPublish> = []
        for record in publisher.pending where !record.done && record.request.isLive {
            retry.append(UnsentPublish(request: record.request, index: record.index))
        }
        if !retry.isEmpty {
            logger.info("unconfirmed publishes will be republished", metadata: ["count": "\(retry.count)"])
        }
        retry.append(contentsOf: publisher.unsent)
        publisher = PublisherState()
        publisher.unsent = retry
        for consumer in consumers.values.sorted(by: { $0.id < $1.id }) {
            consumer.channelLost()
            if consumer.cancelled {
                remove(consumer, error: nil)
            } else {
                consumer.needsResubscribe = true
            }
        }
        delivering.removeAll()
        needsRepair = false
        shared.withLock { $0.blockedReason = nil }
        finishPass()
    }

    func shutdown() {
        gate.withLock { closed = true }
        backlog.append(contentsOf: inbox.drain())
        if let connection {
            try? flushSettlements()
            var quick = timeval(tv_sec: 2, tv_usec: 0)
            amqp_set_rpc_timeout(connection, &quick)
            _ = amqp_connection_close(connection, Int32(AMQP_REPLY_SUCCESS))
        }
        destroyConnection()
        for command in backlog + parked {
            switch command {
            case .publish(let request):
                request.failRemaining(.closed)
                request.complete()
            case .topology(let request): request.continuation.resume(throwing: AMQPError.closed)
            case .consume(let request): request.continuation.resume(throwing: AMQPError.closed)
            case .setPrefetch(_, _, let continuation): continuation.resume(throwing: AMQPError.closed)
            case .cancel(_, let continuation): continuation.resume()
            case .drain(let continuation): drainWaiters.append(continuation)
            case .settle: break
            }
        }
        backlog.removeAll()
        parked.removeAll()
        for request in activeRequests where request.isLive {
            request.failRemaining(.closed)
            request.complete()
        }
        activeRequests.removeAll()
        publisher = PublisherState()
        for consumer in Array(consumers.values) { remove(consumer, error: nil) }
        finishPass()
        for waiter in drainWaiters { waiter.resume() }
        drainWaiters.removeAll()
        empty_amqp_pool(pool)
    }

    // MARK: - The pass

    /// Runs the queued commands in order. A connection failure leaves the rest queued for after the reconnect.
    func runBacklog() throws {
        while let command = backlog.popFirst() {
            switch command {
            case .publish(let request):
                accept(request)
            case .settle(let id, let incarnation, let tag, let kind):
                if let consumer = consumers[id], consumer.incarnation == incarnation, consumer.channelOpen {
                    _ = consumer.tracker.settle(tag: tag, kind: kind)
                }
            case .topology(let request):
                do {
                    request.continuation.resume(returning: try runTopology(request.operation))
                } catch let failure as ChannelFailure {
                    request.continuation.resume(throwing: failure.error)
                } catch {
                    parked.append(command)
                    throw error
                }
            case .consume(let request):
                do {
                    try startConsumer(request)
                    request.continuation.resume()
                } catch let failure as ChannelFailure {
                    request.continuation.resume(throwing: failure.error)
                } catch {
                    parked.append(command)
                    throw error
                }
            case .setPrefetch(let id, let prefetch, let continuation):
                guard let consumer = consumers[id] else {
                    continuation.resume()
                    continue
                }
                do {
                    try setPrefetch(consumer, prefetch)
                    continuation.resume()
                } catch let failure as ChannelFailure {
                    continuation.resume(throwing: failure.error)
                } catch {
                    // The new prefetch applies when the consumer is resubscribed after the reconnect.
                    continuation.resume()
                    throw error
                }
            case .cancel(let id, let continuation):
                defer { continuation.resume() }
                if let consumer = consumers[id] { try cancel(consumer) }
            case .drain(let continuation):
                drainWaiters.append(continuation)
            }
        }
    }

    /// Takes a publish request on: its messages join the unsent queue, in order.
    func accept(_ request: PublishRequest) {
        activeRequests.append(request)
        for index in request.items.indices {
            publisher.unsent.append(UnsentPublish(request: request, index: index))
        }
        if request.items.isEmpty {
            completed.append(request)
        }
    }

    /// Hands this pass's deliveries to their consumers and resumes the callers whose work completed.
    func finishPass() {
        for consumer in delivering {
            consumer.buffer.append(contentsOf: consumer.batch)
            consumer.batch.removeAll(keepingCapacity: true)
        }
        delivering.removeAll(keepingCapacity: true)
        for request in completed { request.complete() }
        completed.removeAll(keepingCapacity: true)
        if !drainWaiters.isEmpty {
            activeRequests.removeAll { !$0.isLive }
            if activeRequests.isEmpty {
                for waiter in drainWaiters { waiter.resume() }
                drainWaiters.removeAll()
            }
        }
    }

    /// Fails publishes and parked commands whose deadline passed: `.timeout` while connected, else the reason the
    /// connection is down. Runs at most every 50 ms.
    func checkDeadlines(connected: Bool, reason: String?) {
        let now = ContinuousClock.now
        guard now - lastDeadlineCheck >= .milliseconds(50) else { return }
        lastDeadlineCheck = now
        let lost = AMQPError.connectionLost(
            "no connection to the broker before the deadline (\(reason ?? "disconnected"))")
        activeRequests.removeAll { request in
            guard request.isLive else { return true }
            guard request.deadline <= now else { return false }
            request.failRemaining(connected ? .timeout : lost)
            request.complete()
            return true
        }
        parked.removeAll { command in
            switch command {
            case .topology(let request) where request.deadline <= now:
                request.continuation.resume(throwing: connected ? AMQPError.timeout : lost)
                return true
            case .consume(let request) where request.deadline <= now:
                request.continuation.resume(throwing: connected ? AMQPError.timeout : lost)
                return true
            default:
                return false
            }
        }
        if !connected {
            publisher.unsent.removeAll { !$0.request.isLive }
        }
    }

    func recyclePool() {
        recycle_amqp_pool(pool)
        exchangeCache.invalidate()
        routingKeyCache.invalidate()
    }

    func destroyConnection() {
        guard let connection else { return }
        self.connection = nil
        amqp_destroy_connection(connection)
    }
}

/// A channel error from an RPC: the broker closed the channel (the client already answered close-ok and will
/// reopen it); the connection itself is fine and the caller gets `error`.
struct ChannelFailure: Error {
    let error: AMQPError
}

/// The C copy of the last string encoded for one publish field, reused while the pool lives (a batch usually
/// publishes to one exchange and routing key).
struct BytesCache {
    private var string: String?
    private var bytes = amqp_empty_bytes

    mutating func bytes(for value: String, encoder: PoolEncoder) throws(AMQPError) -> amqp_bytes_t {
        if let string, string == value { return bytes }
        bytes = try encoder.bytes(value)
        string = value
        return bytes
    }

    mutating func invalidate() { string = nil }
}

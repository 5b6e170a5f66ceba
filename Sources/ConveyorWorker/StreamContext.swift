import Conveyor
import ConveyorIO
import ConveyorRedis
import Logging

/// What a running generator yields through, and what it knows about its task.
///
/// ```swift
/// registry.registerStream(Tokens.self) { input, stream in
///     for word in input.text.split(separator: " ") { try await stream.yield(String(word)) }
/// }
/// ```
public struct StreamContext<Element: Encodable & Sendable>: Sendable {
    /// The task's context: id, retries, progress, logger.
    public let task: TaskContext
    let producer: StreamProducer

    /// The index the next ``yield(_:)`` gives its item (from 0).
    public var nextIndex: Int { producer.nextIndex }

    /// Appends `element` to the stream. Readers see it within about a round trip to Redis.
    ///
    /// Returns at once while items are being written (they are pipelined in batches); waits when the generator's
    /// backpressure bound is reached (until the consumer reads) or when too many items wait to be written.
    ///
    /// - Throws: `CancellationError` when the task was cancelled (revoked, a consumer that stopped, time limit,
    ///   shutdown) or no longer holds its lease; `EncodingError` for an element JSON cannot hold; the error that
    ///   stopped the writes to Redis.
    public func yield(_ element: Element) async throws {
        try Task.checkCancellation()
        try await producer.yield(try ResultEncoding.json(element))
    }
}

/// Writes one run's items to its stream: a buffer that `yield` fills and one flusher drains, one script call per
/// batch, so the generator does not wait a round trip per item; and, with a bound, the consumer's position.
final class StreamProducer: Sendable {
    /// Items waiting to be written before `yield` waits (without a bound this is the only limit on memory).
    static let maxPending = 8_192
    /// Items per append script call.
    static let maxBatch = 1_000

    private struct State {
        /// The index the next yield gets.
        var next = 0
        var pending: [[UInt8]] = []
        /// The index of `pending[0]`.
        var pendingFirst = 0
        /// Items known to be in the stream (a replayed run skips these without sending them).
        var stored = 0
        /// The recording consumer's position.
        var consumed = 0
        var inputClosed = false
        /// Why writing stopped; every later yield throws it.
        var failure: (any Error)?
        var flusher: CheckedContinuation<Void, Never>?
        /// Bumped on every change a waiting yield may care about; a yield that saw an older value does not sleep.
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiterID: UInt64 = 0
    }

    private enum Decision {
        case appended(CheckedContinuation<Void, Never>?)
        case skipped
        case wait(generation: UInt64)
        case fail(any Error)
    }

    let id: String
    let token: Int64
    let bound: Int?
    let store: TaskStore
    let redis: RedisClient
    let logger: Logger
    private let state = LockedValue(State())

    init(context: TaskContext, bound: Int?) {
        id = context.id
        token = context.token
        self.bound = bound
        store = context.store
        redis = context.redis
        logger = context.logger
    }

    /// The bound a message asks for (`conveyor_stream_bound`), if any.
    static func bound(of envelope: TaskEnvelope) -> Int? {
        envelope.conveyor[ConveyorHeader.streamBound.rawValue]?.intValue.map { Int(max(1, $0)) }
    }

    var nextIndex: Int { state.withLock { $0.next } }

    /// Runs the generator `body` with the flusher (and, with a bound, the position follower) beside it; after it
    /// returns or throws, waits until every item it yielded is written. Returns the item count.
    ///
    /// - Throws: what `body` threw, else what stopped the writes.
    func run(_ body: () async throws -> Void) async throws -> Int {
        let result: Result<Int, any Error> = await withTaskGroup(of: Void.self) { followers in
            if bound != nil { followers.addTask { await self.followReads() } }
            let result: Result<Int, any Error> = await withTaskGroup(of: Void.self) { flushing in
                // The flusher keeps writing when the run is cancelled: items yielded before a revocation or an
                // error reach readers ahead of the end marker.
                flushing.addTask { await self.flushLoop() }
                var bodyError: (any Error)?
                do {
                    try await body()
                } catch {
                    bodyError = error
                }
                closeInput()
                await flushing.waitForAll()
                let (count, failure) = state.withLock { ($0.next, $0.failure) }
                if let bodyError { return .failure(bodyError) }
                if let failure { return .failure(failure) }
                return .success(count)
            }
            followers.cancelAll()
            return result
        }
        return try result.get()
    }

    func yield(_ item: [UInt8]) async throws {
        while true {
            let decision: Decision = state.withLock { state in
                if let failure = state.failure { return .fail(failure) }
                let index = state.next
                if index < state.stored {
                    state.next += 1
                    return .skipped
                }
                if let bound, index >= state.consumed + bound { return .wait(generation: state.generation) }
                if state.pending.count >= Self.maxPending { return .wait(generation: state.generation) }
                if state.pending.isEmpty { state.pendingFirst = index }
                state.pending.append(item)
                state.next += 1
                let flusher = state.flusher
                state.flusher = nil
                return .appended(flusher)
            }
            switch decision {
            case .appended(let flusher):
                flusher?.resume()
                return
            case .skipped: return
            case .fail(let error): throw error
            case .wait(let generation): try await waitForChange(after: generation)
            }
        }
    }

    /// Sleeps until the state changes after `generation` (a write finished, the consumer read, writing failed).
    private func waitForChange(after generation: UInt64) async throws {
        let waiterID = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.generation != generation { return .success(()) }
                    state.waiters[waiterID] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: waiterID) }?.resume(throwing: CancellationError())
        }
    }

    /// Wakes every waiting yield after `change`.
    private func changed(_ change: (inout State) -> Void) {
        let waiters = state.withLock { state in
            change(&state)
            state.generation &+= 1
            let waiters = state.waiters
            state.waiters = [:]
            return waiters
        }
        for waiter in waiters.values { waiter.resume() }
    }

    private func closeInput() {
        let flusher = state.withLock { state in
            state.inputClosed = true
            let flusher = state.flusher
            state.flusher = nil
            return flusher
        }
        flusher?.resume()
    }

    private func fail(_ error: any Error) {
        changed { state in
            if state.failure == nil { state.failure = error }
            state.pending = []
        }
    }

    /// Writes batches until the input is closed and written, or a write fails for good.
    private func flushLoop() async {
        while let batch = await nextBatch() {
            let (first, items) = batch
            do {
                switch try await append(first: first, items: items) {
                case .appended(let stored, let consumed):
                    changed { state in
                        state.stored = max(state.stored, stored)
                        state.consumed = max(state.consumed, consumed)
                    }
                case .fenced:
                    logger.warning("lease lost while streaming; the run stops")
                    fail(CancellationError())
                    return
                case .gap(let stored):
                    fail(TaskFailure(type: "StreamGap", message: "item \(first) would follow \(stored) stored items"))
                    return
                }
            } catch {
                logger.error("could not write stream items", metadata: ["error": "\(error)"])
                fail(error)
                return
            }
        }
    }

    /// The next batch to write: waits for items; `nil` once the input is closed and empty, or writing failed.
    private func nextBatch() async -> (first: Int, items: [[UInt8]])? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if !state.pending.isEmpty || state.inputClosed || state.failure != nil { return true }
                state.flusher = continuation
                return false
            }
            if ready { continuation.resume() }
        }
        var batch: (first: Int, items: [[UInt8]])?
        changed { state in
            guard state.failure == nil, !state.pending.isEmpty else { return }
            let first = state.pendingFirst
            if state.pending.count <= Self.maxBatch {
                batch = (first, state.pending)
                state.pending = []
            } else {
                batch = (first, Array(state.pending[0..<Self.maxBatch]))
                state.pending.removeFirst(Self.maxBatch)
            }
            state.pendingFirst = first + (batch?.items.count ?? 0)
        }
        return batch
    }

    /// One append, tried again on a Redis error (a short outage) a few times.
    private func append(first: Int, items: [[UInt8]]) async throws -> StreamAppendOutcome {
        var delay = Duration.milliseconds(50)
        var attempt = 0
        while true {
            do {
                return try await store.appendItems(id, token: token, firstIndex: first, items: items)
            } catch let error as RedisError {
                attempt += 1
                if attempt >= 8 { throw error }
                logger.warning("stream append failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Follows the consumer's position: its channel wakes a yield held at the bound at once; a read every 250 ms
    /// covers a publish missed while subscribing (or a subscription that cannot be made).
    private func followReads() async {
        let channel = store.keys.streamRead(id)
        let subscription: RedisSubscription?
        do {
            subscription = try await redis.subscriber.subscribe([channel])
        } catch {
            logger.debug("cannot follow the stream's read position; polling", metadata: ["error": "\(error)"])
            subscription = nil
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    if let position = try? await self.store.streamReadPosition(self.id) { self.advance(to: position) }
                    try? await Task.sleep(for: subscription == nil ? .milliseconds(50) : .milliseconds(250))
                }
            }
            guard let subscription else {
                await group.waitForAll()
                return
            }
            for await message in subscription {
                if let position = Int(message.string) { advance(to: position) }
            }
            group.cancelAll()
        }
        subscription?.unsubscribe()
    }

    private func advance(to position: Int) {
        let behind = state.withLock { $0.consumed < position }
        if behind { changed { $0.consumed = max($0.consumed, position) } }
    }
}

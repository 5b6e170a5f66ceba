import ConveyorIO

/// One caller waiting for one task's ready meta. Resolved at most once; the value may arrive before or after
/// the caller starts waiting.
final class ResultWaiter: Sendable {
    let id: String
    private enum State {
        case waiting(CheckedContinuation<CeleryResultMeta, any Error>?)
        case done(Result<CeleryResultMeta, any Error>)
    }
    private let state = LockedValue(State.waiting(nil))

    init(id: String) { self.id = id }

    /// Resolves the waiter (the first call wins).
    func resolve(_ result: Result<CeleryResultMeta, any Error>) {
        let continuation: CheckedContinuation<CeleryResultMeta, any Error>? = state.withLock { state in
            guard case .waiting(let continuation) = state else { return nil }
            state = .done(result)
            return continuation
        }
        continuation?.resume(with: result)
    }

    /// The meta, once resolved. Cancelling the calling task resolves the waiter with `CancellationError`.
    var value: CeleryResultMeta {
        get async throws {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let ready: Result<CeleryResultMeta, any Error>? = state.withLock { state in
                        switch state {
                        case .done(let result): return result
                        case .waiting:
                            state = .waiting(continuation)
                            return nil
                        }
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            } onCancel: {
                resolve(.failure(CancellationError()))
            }
        }
    }
}

/// One ``ConveyorClient/wait(_:count:timeout:)`` call's interest in many tasks' readiness: ids come out of
/// ``ready`` as notifications name them, with no read of their results (a notification is only ever published
/// for a ready task).
final class ReadyWatch: Sendable {
    let ids: Set<String>
    let ready: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    init(ids: Set<String>) {
        self.ids = ids
        (ready, continuation) = AsyncStream.makeStream(of: String.self)
    }

    func yield(_ id: String) { continuation.yield(id) }
    func finish() { continuation.finish() }
}

/// The client's outstanding waiters by task id: what a notification (or a reconnect) resumes.
///
/// - Important: every method may be called from any task; the dictionary is guarded by its `LockedValue`.
final class ResultWaiters: Sendable {
    private struct State {
        var waiters: [String: [ObjectIdentifier: ResultWaiter]] = [:]
        var watches: [String: [ObjectIdentifier: ReadyWatch]] = [:]
        var closed = false
    }
    private let state = LockedValue(State())

    /// Registers `waiter`; if the client is closed it is resolved with ``ConveyorError/closed`` at once.
    func add(_ waiter: ResultWaiter) {
        let closed = state.withLock { state in
            if state.closed { return true }
            state.waiters[waiter.id, default: [:]][ObjectIdentifier(waiter)] = waiter
            return false
        }
        if closed { waiter.resolve(.failure(ConveyorError.closed)) }
    }

    func remove(_ waiter: ResultWaiter) {
        state.withLock { state in
            state.waiters[waiter.id]?[ObjectIdentifier(waiter)] = nil
            if state.waiters[waiter.id]?.isEmpty == true { state.waiters[waiter.id] = nil }
        }
    }

    /// Registers `watch` for its ids; if the client is closed its stream ends at once.
    func add(_ watch: ReadyWatch) {
        let closed = state.withLock { state in
            if state.closed { return true }
            for id in watch.ids { state.watches[id, default: [:]][ObjectIdentifier(watch)] = watch }
            return false
        }
        if closed { watch.finish() }
    }

    func remove(_ watch: ReadyWatch) {
        state.withLock { state in
            for id in watch.ids {
                state.watches[id]?[ObjectIdentifier(watch)] = nil
                if state.watches[id]?.isEmpty == true { state.watches[id] = nil }
            }
        }
        watch.finish()
    }

    /// A notification named `id`: tells the watches at once; returns whether a waiter needs its result read.
    func notified(_ id: String) -> Bool {
        let (watches, hasWaiters) = state.withLock { ($0.watches[id], $0.waiters[id] != nil) }
        for watch in watches?.values ?? [:].values { watch.yield(id) }
        return hasWaiters
    }

    /// Ids someone waits for or watches.
    var outstandingIDs: [String] {
        state.withLock { Array(Set($0.waiters.keys).union($0.watches.keys)) }
    }

    /// Resolves and forgets every waiter of `id`.
    func resolve(_ id: String, with meta: CeleryResultMeta) {
        let (waiters, watches) = state.withLock { ($0.waiters.removeValue(forKey: id), $0.watches[id]) }
        for waiter in waiters?.values ?? [:].values { waiter.resolve(.success(meta)) }
        for watch in watches?.values ?? [:].values { watch.yield(id) }
    }

    /// Fails every waiter with ``ConveyorError/closed`` and refuses new ones.
    func close() {
        let (all, watches) = state.withLock { state in
            state.closed = true
            defer {
                state.waiters = [:]
                state.watches = [:]
            }
            return (state.waiters.values.flatMap(\.values), state.watches.values.flatMap(\.values))
        }
        for waiter in all { waiter.resolve(.failure(ConveyorError.closed)) }
        for watch in watches { watch.finish() }
    }
}

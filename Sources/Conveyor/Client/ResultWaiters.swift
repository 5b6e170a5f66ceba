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

/// The client's outstanding waiters by task id: what a notification (or a reconnect) resumes.
///
/// - Important: every method may be called from any task; the dictionary is guarded by its `LockedValue`.
final class ResultWaiters: Sendable {
    private struct State {
        var waiters: [String: [ObjectIdentifier: ResultWaiter]] = [:]
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

    /// Whether anyone waits for `id`.
    func isWaited(_ id: String) -> Bool { state.withLock { $0.waiters[id] != nil } }

    /// Ids someone waits for.
    var outstandingIDs: [String] { state.withLock { Array($0.waiters.keys) } }

    /// Resolves and forgets every waiter of `id`.
    func resolve(_ id: String, with meta: CeleryResultMeta) {
        let waiters = state.withLock { $0.waiters.removeValue(forKey: id) }
        for waiter in waiters?.values ?? [:].values { waiter.resolve(.success(meta)) }
    }

    /// Fails every waiter with ``ConveyorError/closed`` and refuses new ones.
    func close() {
        let all = state.withLock { state in
            state.closed = true
            defer { state.waiters = [:] }
            return state.waiters.values.flatMap(\.values)
        }
        for waiter in all { waiter.resolve(.failure(ConveyorError.closed)) }
    }
}

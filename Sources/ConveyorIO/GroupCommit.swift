import DequeModule

/// Group commit: items submitted from many tasks at once are written in fewer, larger operations.
///
/// Up to `maxInFlight` operations may run at once. An item submitted while fewer run is written at once, alone, so
/// a lone caller waits for nothing; items submitted while that many run queue here, and when one operation ends,
/// everything queued (up to `maxBatch` items) goes out as the next one. A caller with many items in flight thus
/// pays one operation per batch instead of one per item, which is what bounds the rate when each operation is a
/// round trip (a confirmed publish, a Redis script).
///
/// No task of its own: the caller whose item finds a free place performs the operation, and after it ends hands
/// the queued items to the first of their callers, which performs them and hands on in turn.
///
/// - Important: every method may be called from any task; the queue is guarded by its `LockedValue`.
public final class GroupCommit<Item: Sendable, Output: Sendable>: Sendable {
    /// At most this many items per operation.
    public let maxBatch: Int
    /// Operations running at once.
    public let maxInFlight: Int

    private enum Turn: Sendable {
        /// The item went out with this result.
        case done(Result<Output, any Error>)
        /// The caller performs these items (its own first), then hands on.
        case lead([Pending])
    }

    private struct Pending: Sendable {
        let item: Item
        let turn: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var inFlight = 0
        var queued: Deque<Pending> = []
    }
    private let state = LockedValue(State())

    /// - Parameters:
    ///   - maxBatch: at most this many items per operation (at least 1).
    ///   - maxInFlight: operations running at once (at least 1).
    public init(maxBatch: Int, maxInFlight: Int) {
        self.maxBatch = max(1, maxBatch)
        self.maxInFlight = max(1, maxInFlight)
    }

    /// Items waiting for an operation to hand them on (for tests and gauges).
    public var queuedCount: Int { state.withLock { $0.queued.count } }

    /// Writes `item`, alone or with others, through `perform`, and returns what the operation holding it returned.
    ///
    /// `perform` is called with the items of one operation in submission order. Which caller's closure performs a
    /// batch is not defined, so every caller must pass an equivalent one.
    ///
    /// - Throws: what `perform` threw for the operation holding `item`.
    public func submit(_ item: Item, perform: @Sendable ([Item]) async throws -> Output) async throws -> Output {
        let leads = state.withLock { state in
            if state.inFlight >= maxInFlight { return false }
            state.inFlight += 1
            return true
        }
        if leads {
            let result = await Self.run(perform, [item])
            handOn()
            return try result.get()
        }
        let turn = await withCheckedContinuation { continuation in
            // Queued under the lock that `handOn` takes, so the hand-on cannot miss it.
            let leadNow = state.withLock { state in
                if state.inFlight >= maxInFlight {
                    state.queued.append(Pending(item: item, turn: continuation))
                    return false
                }
                state.inFlight += 1
                return true
            }
            if leadNow { continuation.resume(returning: .lead([Pending(item: item, turn: continuation)])) }
        }
        let batch: [Pending]
        switch turn {
        case .done(let result): return try result.get()
        case .lead(let pending): batch = pending
        }
        let result = await Self.run(perform, batch.map(\.item))
        // The first element is this caller's own item (its continuation was only used to hand it the lead).
        for other in batch.dropFirst() { other.turn.resume(returning: .done(result)) }
        handOn()
        return try result.get()
    }

    private static func run(
        _ perform: ([Item]) async throws -> Output, _ items: [Item]
    ) async -> Result<
        Output, any Error
    > {
        do {
            return .success(try await perform(items))
        } catch {
            return .failure(error)
        }
    }

    /// After an operation: gives the queued items (up to `maxBatch`) to the first of their callers, who performs
    /// them in this operation's place, or frees the place when none are queued.
    private func handOn() {
        let next: [Pending]? = state.withLock { state in
            guard !state.queued.isEmpty else {
                state.inFlight -= 1
                return nil
            }
            let count = min(maxBatch, state.queued.count)
            let taken = Array(state.queued.prefix(count))
            state.queued.removeFirst(count)
            return taken
        }
        if let next, let first = next.first { first.turn.resume(returning: .lead(next)) }
    }
}

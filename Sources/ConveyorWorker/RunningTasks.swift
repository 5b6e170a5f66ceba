import ConveyorIO
import DequeModule

/// Why a running task's Swift task was cancelled; decides what is recorded when it then throws.
enum CancelReason: Sendable, Equatable {
    case softTimeLimit(seconds: Double)
    /// A revocation tombstone appeared (``ConveyorClient``'s cancel, an operator); the reason it gives.
    case revoked(String)
    /// The lease is no longer this worker's: another worker owns the task, or it already has an outcome.
    case leaseLost
    /// The worker is shutting down and the grace period ran out.
    case shutdown
}

/// How a run ended, as the execution slot sees it.
enum RunEnd: Sendable {
    case returned([UInt8])
    case threw(any Error, CancelReason?)
    /// The hard time limit passed first; the Swift task was cancelled and abandoned.
    case hardTimeLimit(seconds: Double)
    /// Shutdown gave up on it; it was cancelled and abandoned.
    case abandoned
}

/// A value set once, awaited by one caller: the first of the task's completion, its hard limit, or shutdown wins.
final class Settlement<Value: Sendable>: Sendable {
    private enum State {
        case pending(CheckedContinuation<Value, Never>?)
        case settled(Value)
    }
    private let state = LockedValue<State>(.pending(nil))

    /// Settles with `value` unless already settled; returns whether this call did.
    @discardableResult
    func settle(_ value: Value) -> Bool {
        let waiter: CheckedContinuation<Value, Never>?? = state.withLock { state in
            guard case .pending(let waiter) = state else { return .none }
            state = .settled(value)
            return .some(waiter)
        }
        guard case .some(let continuation) = waiter else { return false }
        continuation?.resume(returning: value)
        return true
    }

    /// The value, once settled. Not cancellable: a settlement always comes (completion, hard limit or shutdown).
    var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let settled: Value? = state.withLock { state in
                    switch state {
                    case .settled(let value): return value
                    case .pending:
                        state = .pending(continuation)
                        return nil
                    }
                }
                if let settled { continuation.resume(returning: settled) }
            }
        }
    }
}

/// One task running in a slot: its Swift task (cancellable by heartbeats and shutdown) and how it will end.
final class RunningTask: Sendable {
    let id: String
    let settlement = Settlement<RunEnd>()
    private let state = LockedValue<(work: Task<Void, Never>?, reason: CancelReason?)>((nil, nil))

    init(id: String) { self.id = id }

    func attach(_ work: Task<Void, Never>) {
        let cancelled = state.withLock { state in
            state.work = work
            return state.reason != nil
        }
        if cancelled { work.cancel() }
    }

    /// Cancels the Swift task for `reason`; the first reason given is the one recorded.
    func cancel(_ reason: CancelReason) {
        let work = state.withLock { state in
            if state.reason == nil { state.reason = reason }
            return state.work
        }
        work?.cancel()
    }

    var cancelReason: CancelReason? { state.withLock { $0.reason } }
}

/// The tasks a worker runs now, by id: heartbeats renew their leases and cancel the revoked ones.
final class RunningTasks: Sendable {
    private let tasks = LockedValue<[String: RunningTask]>([:])

    func insert(_ task: RunningTask) { tasks.withLock { $0[task.id] = task } }
    func remove(_ id: String) { tasks.withLock { _ = $0.removeValue(forKey: id) } }
    subscript(id: String) -> RunningTask? { tasks.withLock { $0[id] } }
    var ids: [String] { tasks.withLock { Array($0.keys) } }
    var all: [RunningTask] { tasks.withLock { Array($0.values) } }
    var count: Int { tasks.withLock { $0.count } }
}

/// The worker's execution slots, shared by all its queues: a delivery waits here for a free slot.
final class SlotPool: Sendable {
    private struct State {
        var free: Int
        var waiters: Deque<CheckedContinuation<Void, Never>> = []
    }
    private let state: LockedValue<State>

    init(slots: Int) { state = LockedValue(State(free: slots)) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let next = state.waiters.popFirst() { return next }
            state.free += 1
            return nil
        }
        next?.resume()
    }
}

import ConveyorIO
import DequeModule
import Synchronization

/// Deliveries handed from the connection's thread to a consumer's iterator.
///
/// The broker's prefetch bounds how many deliveries can be unacked, hence buffered here, so the buffer needs no
/// bound of its own. The thread appends a whole pass's deliveries under one lock acquisition and resumes at most
/// the waiting iterators; an iterator that finds items takes one without suspending.
// Safe: `items`, `waiters`, `nextWaiterID` and `end` are guarded by `lock`.
final class DeliveryBuffer: @unchecked Sendable {
    private let lock = Lock()
    private var items: Deque<AMQPDelivery> = []
    private var waiters: Deque<(id: UInt64, continuation: IOContinuation<AMQPDelivery?, any Error>)> = []
    private var nextWaiterID: UInt64 = 0
    /// Set once the consumer ends: `nil` error for a clean end (cancel, close), else the reason.
    private var end: AMQPError??

    /// Hands over `batch`; dropped if the consumer already ended.
    func append(contentsOf batch: [AMQPDelivery]) {
        guard !batch.isEmpty else { return }
        var first: (IOContinuation<AMQPDelivery?, any Error>, AMQPDelivery)?
        var more: [(IOContinuation<AMQPDelivery?, any Error>, AMQPDelivery)] = []
        lock.withLock {
            guard end == nil else { return }
            var index = 0
            while index < batch.count, let waiter = waiters.popFirst() {
                if first == nil {
                    first = (waiter.continuation, batch[index])
                } else {
                    more.append((waiter.continuation, batch[index]))
                }
                index += 1
            }
            if index < batch.count { items.append(contentsOf: batch[index...]) }
        }
        if let (continuation, delivery) = first { continuation.resume(returning: delivery) }
        for (continuation, delivery) in more { continuation.resume(returning: delivery) }
    }

    /// Ends the sequence after the buffered items: cleanly, or with `error`.
    func finish(error: AMQPError?) {
        let woken: [IOContinuation<AMQPDelivery?, any Error>] = lock.withLock {
            guard end == nil else { return [] }
            end = .some(error)
            guard items.isEmpty else { return [] }
            let all = waiters.map(\.continuation)
            waiters.removeAll()
            return all
        }
        for (index, continuation) in woken.enumerated() {
            // Only the first waiter sees the error; the others see the end.
            if let error, index == 0 {
                continuation.resume(throwing: error)
            } else {
                continuation.resume(returning: nil)
            }
        }
        if !woken.isEmpty, error != nil { lock.withLock { end = .some(nil) } }
    }

    /// Drops buffered deliveries of channel incarnations other than `current`: the broker redelivers them, and
    /// settling them would be a no-op.
    func dropStale(current: UInt64) {
        lock.withLock { items.removeAll { $0.incarnation != current } }
    }

    var bufferedCount: Int { lock.withLock { items.count } }

    /// The next delivery; `nil` when the consumer ended cleanly or the task was cancelled.
    ///
    /// - Throws: the error the consumer ended with (once; later calls return `nil`).
    func next() async throws -> AMQPDelivery? {
        enum Fast {
            case item(AMQPDelivery)
            case end(AMQPError?)
            case wait
        }
        let fast: Fast = lock.withLock {
            if let item = items.popFirst() { return .item(item) }
            if let end {
                self.end = .some(nil)
                return .end(end)
            }
            return .wait
        }
        switch fast {
        case .item(let item): return item
        case .end(let error):
            if let error { throw error }
            return nil
        case .wait: break
        }
        let id = lock.withLock {
            nextWaiterID += 1
            return nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withIOThrowingContinuation { (continuation: IOContinuation<AMQPDelivery?, any Error>) in
                let now: Fast = lock.withLock {
                    if let item = items.popFirst() { return .item(item) }
                    if let end {
                        self.end = .some(nil)
                        return .end(end)
                    }
                    if Task.isCancelled { return .end(nil) }
                    waiters.append((id, continuation))
                    return .wait
                }
                switch now {
                case .item(let item): continuation.resume(returning: item)
                case .end(let error):
                    if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: nil) }
                case .wait: break
                }
            }
        } onCancel: {
            let waiter: IOContinuation<AMQPDelivery?, any Error>? = lock.withLock {
                guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
    }
}

/// Routes a delivery's settlement to the connection's thread, unless the channel incarnation that delivered it
/// is gone (then it would ack an unrelated message on the new channel).
final class Settler: Sendable {
    let consumerID: UInt64
    let inbox: Inbox<Command>
    /// The consumer's live channel incarnation; 0 while it has none.
    let incarnation = Atomic<UInt64>(0)

    init(consumerID: UInt64, inbox: Inbox<Command>) {
        self.consumerID = consumerID
        self.inbox = inbox
    }

    func settle(incarnation: UInt64, tag: UInt64, kind: SettleKind) -> Bool {
        guard incarnation != 0, self.incarnation.load(ordering: .acquiring) == incarnation else { return false }
        inbox.push(.settle(consumerID: consumerID, incarnation: incarnation, tag: tag, kind: kind))
        return true
    }
}

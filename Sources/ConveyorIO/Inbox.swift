import DequeModule

/// A multi-producer queue drained by one owner thread, which it wakes through a ``Wakeup``.
///
/// - Important: `push` may be called from any thread; `drain` only from the owner.
public final class Inbox<Element: Sendable>: @unchecked Sendable {
    // Safe: `items` is guarded by `lock`; `wakeup` is itself thread-safe.
    private let lock = Lock()
    private var items: Deque<Element> = []
    public let wakeup: Wakeup

    public init(wakeup: Wakeup = Wakeup()) { self.wakeup = wakeup }

    /// Queues `element` and wakes the owner if the queue was empty (a non-empty queue already has a wakeup
    /// pending, which keeps a burst of callers to one syscall).
    public func push(_ element: Element) {
        let wasEmpty = lock.withLock {
            let wasEmpty = items.isEmpty
            items.append(element)
            return wasEmpty
        }
        if wasEmpty { wakeup.signal() }
    }

    public func push(contentsOf elements: some Sequence<Element>) {
        let wasEmpty = lock.withLock {
            let wasEmpty = items.isEmpty
            items.append(contentsOf: elements)
            return wasEmpty
        }
        if wasEmpty { wakeup.signal() }
    }

    /// Takes everything queued so far, in order.
    public func drain() -> Deque<Element> {
        lock.withLock {
            let taken = items
            items.removeAll(keepingCapacity: true)
            return taken
        }
    }

    public var isEmpty: Bool { lock.withLock { items.isEmpty } }
}

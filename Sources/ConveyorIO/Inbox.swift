import DequeModule

/// A multi-producer queue drained by one owner thread, which it wakes through a ``Wakeup``.
///
/// - Important: `push` may be called from any thread; `drain` only from the owner.
public final class Inbox<Element: Sendable>: @unchecked Sendable {
    // Safe: `items` is guarded by `lock`; `wakeup` is itself thread-safe.
    // Inlinable so that clients specialise it for their element type: unspecialised, every push and drain looks
    // up generic metadata at run time, which showed up at several percent of a busy connection's CPU.
    @usableFromInline let lock = Lock()
    @usableFromInline var items: Deque<Element> = []
    public let wakeup: Wakeup

    public init(wakeup: Wakeup = Wakeup()) { self.wakeup = wakeup }

    /// Queues `element` and wakes the owner if the queue was empty (a non-empty queue already has a wakeup
    /// pending, which keeps a burst of callers to one syscall).
    @inlinable
    public func push(_ element: Element) {
        let wasEmpty = lock.withLock {
            let wasEmpty = items.isEmpty
            items.append(element)
            return wasEmpty
        }
        if wasEmpty { wakeup.signal() }
    }

    @inlinable
    public func push(contentsOf elements: some Sequence<Element>) {
        let wasEmpty = lock.withLock {
            let wasEmpty = items.isEmpty
            items.append(contentsOf: elements)
            return wasEmpty
        }
        if wasEmpty { wakeup.signal() }
    }

    /// Takes everything queued so far, in order.
    @inlinable
    public func drain() -> Deque<Element> {
        lock.withLock {
            // Swap in fresh storage: `removeAll(keepingCapacity:)` on storage still shared with `taken` would first
            // copy every element (retaining each) only to destroy the copies.
            var taken = Deque<Element>(minimumCapacity: items.count)
            swap(&taken, &items)
            return taken
        }
    }

    @inlinable
    public var isEmpty: Bool { lock.withLock { items.isEmpty } }
}

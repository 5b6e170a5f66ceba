import ConveyorIO
import DequeModule

/// The connections ``RedisClient`` leases out for blocking commands, one user at a time.
///
/// A connection returns to the pool only when it owes no reply: after a blocking command timed out on the
/// client side, its reply is still due, and handing it on would give the next user that stale reply (or make
/// it wait behind the still-blocked command), so it is closed instead.
// Safe: every mutable field is guarded by `lock`.
final class DedicatedConnectionPool: @unchecked Sendable {
    private enum Grant {
        case connection(RedisConnection)
        /// A slot freed up: the waiter may open a new connection.
        case create
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private let lock = Lock()
    private var idle: [RedisConnection] = []
    /// Connections idle, leased, or being opened.
    private var total = 0
    private var waiters: Deque<Waiter> = []
    /// Each waiter's deadline; cancelled when the waiter is served first.
    private var timers: [UInt64: Task<Void, Never>] = [:]
    private var nextWaiterID: UInt64 = 0
    private var closed = false
    private let maximum: Int
    private let configuration: RedisConfiguration

    init(configuration: RedisConfiguration, maximum: Int) {
        self.configuration = configuration
        self.maximum = max(1, maximum)
    }

    /// A connection for one user: an idle one, a new one while below the maximum, or the next one released.
    func lease(timeout: Duration) async throws -> RedisConnection {
        enum Decision {
            case use(RedisConnection)
            case create
            case wait
        }
        let decision: Decision = try lock.withLock {
            if closed { throw RedisError.closed }
            if let connection = idle.popLast() { return .use(connection) }
            if total < maximum {
                total += 1
                return .create
            }
            return .wait
        }
        switch decision {
        case .use(let connection): return connection
        case .create: return try await open()
        case .wait:
            switch try await waitForGrant(timeout: timeout) {
            case .connection(let connection): return connection
            case .create: return try await open()
            }
        }
    }

    /// Hands `connection` to the next waiter, or keeps it idle, or closes it when it still owes a reply.
    ///
    /// A connection still owing a reply is closed before this returns: a blocking command whose caller gave up
    /// (`BLPOP` past its client deadline) must not go on to take an element nobody will see.
    func release(_ connection: RedisConnection) async {
        if connection.outstandingReplies > 0 || connection.isClosed {
            await connection.close()
            freeSlot()
            return
        }
        let waiter: Waiter? = lock.withLock {
            if closed { return nil }
            if let waiter = waiters.popFirst() {
                timers.removeValue(forKey: waiter.id)?.cancel()
                return waiter
            }
            idle.append(connection)
            return nil
        }
        if let waiter {
            waiter.continuation.resume(returning: .connection(connection))
        } else if lock.withLock({ closed }) {
            await connection.close()
        }
    }

    func close() async {
        let (connections, waiting) = lock.withLock {
            closed = true
            let connections = idle
            idle.removeAll()
            let waiting = waiters
            waiters.removeAll()
            for timer in timers.values { timer.cancel() }
            timers.removeAll()
            return (connections, waiting)
        }
        for waiter in waiting { waiter.continuation.resume(throwing: RedisError.closed) }
        for connection in connections { await connection.close() }
    }

    private func open() async throws -> RedisConnection {
        do {
            return try await RedisConnection.connect(configuration)
        } catch {
            freeSlot()
            throw error
        }
    }

    /// A connection went away: let the next waiter open one in its place.
    private func freeSlot() {
        let waiter: Waiter? = lock.withLock {
            if let waiter = waiters.popFirst() {
                timers.removeValue(forKey: waiter.id)?.cancel()
                return waiter
            }
            total -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .create)
    }

    private func waitForGrant(timeout: Duration) async throws -> Grant {
        let id = lock.withLock {
            nextWaiterID += 1
            return nextWaiterID
        }
        return try await withCheckedThrowingContinuation { continuation in
            let rejected: Bool = lock.withLock {
                if closed { return true }
                waiters.append(Waiter(id: id, continuation: continuation))
                return false
            }
            if rejected {
                continuation.resume(throwing: RedisError.closed)
                return
            }
            // Started once the waiter is queued, so it cannot fire before there is something to expire. A waiter
            // served meanwhile makes it a no-op.
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { self.expire(id, timeout: timeout) }
            }
            lock.withLock {
                if waiters.contains(where: { $0.id == id }) { timers[id] = timer } else { timer.cancel() }
            }
        }
    }

    private func expire(_ id: UInt64, timeout: Duration) {
        let waiter: Waiter? = lock.withLock {
            timers.removeValue(forKey: id)
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: index)
        }
        waiter?.continuation.resume(
            throwing: RedisError.timeout(operation: "waiting for a dedicated connection", after: timeout))
    }
}

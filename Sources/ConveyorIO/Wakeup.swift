#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A self-pipe that wakes a connection thread blocked in `poll(2)`.
///
/// Each connection is owned by one thread that sleeps in `poll` on its socket; callers on other threads queue
/// work and call ``signal()`` so the owner notices it without waiting for its poll timeout.
public final class Wakeup: @unchecked Sendable {
    // Safe: the two descriptors are fixed at init; write(2)/read(2) on a pipe are thread-safe.
    public let readFD: Int32
    private let writeFD: Int32

    public init() {
        var fds: [Int32] = [-1, -1]
        let rc = pipe(&fds)
        precondition(rc == 0, "pipe() failed: errno \(errno)")
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds {
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    deinit {
        close(readFD)
        close(writeFD)
    }

    /// Wakes the owner. A full pipe already means "wake up", so EAGAIN is fine.
    public func signal() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }

    /// Empties the pipe; the owner calls this after `poll` reports it readable.
    public func drain() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(readFD, &buffer, buffer.count) > 0 {}
    }
}

/// What `Poller.wait` saw on one descriptor.
public struct PollResult: Sendable, Equatable {
    public var readable: Bool
    public var writable: Bool
    /// POLLERR, POLLHUP or POLLNVAL: the socket is gone.
    public var failed: Bool
}

public enum Poller {
    /// Waits until one of `fds` is ready or `timeoutMilliseconds` passes (-1 waits forever).
    ///
    /// - Returns: one result per descriptor, in order; all false on timeout or EINTR.
    public static func wait(
        _ fds: [(fd: Int32, read: Bool, write: Bool)], timeoutMilliseconds: Int32
    ) -> [PollResult] {
        var pfds = fds.map { entry -> pollfd in
            var events: Int16 = 0
            if entry.read { events |= Int16(POLLIN) }
            if entry.write { events |= Int16(POLLOUT) }
            return pollfd(fd: entry.fd, events: events, revents: 0)
        }
        let rc = pfds.withUnsafeMutableBufferPointer { buffer in
            poll(buffer.baseAddress, nfds_t(buffer.count), timeoutMilliseconds)
        }
        guard rc > 0 else {
            return Array(repeating: PollResult(readable: false, writable: false, failed: false), count: fds.count)
        }
        return pfds.map { pfd in
            let r = Int32(pfd.revents)
            return PollResult(
                readable: r & Int32(POLLIN) != 0,
                writable: r & Int32(POLLOUT) != 0,
                failed: r & (Int32(POLLERR) | Int32(POLLHUP) | Int32(POLLNVAL)) != 0
            )
        }
    }
}

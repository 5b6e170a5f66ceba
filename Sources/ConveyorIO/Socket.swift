#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum SocketOptions {
    /// Turns on TCP keepalive so a silently dead peer (a killed VM, a dropped NAT entry) is noticed.
    public static func enableKeepalive(fd: Int32, idle: Duration) {
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, socklen_t(MemoryLayout<Int32>.size))
        #if os(Linux)
        var idleSeconds = Int32(max(1, idle.seconds))
        var interval = Int32(max(1, idle.seconds / 3))
        var count: Int32 = 3
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idleSeconds, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    /// Turns off Nagle: Conveyor writes whole batches, and latency matters more than packet count.
    public static func disableNagle(fd: Int32) {
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }
}

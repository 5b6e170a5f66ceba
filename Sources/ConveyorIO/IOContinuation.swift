// The continuation a connection's thread resumes when a caller's work is done.
//
// Release builds use unsafe continuations: a request is answered exactly once as it leaves the connection's
// bookkeeping, and the checked variant's extra allocation and reference counting cost about a quarter of the CPU per
// Redis command at 1,000 concurrent callers. Debug builds (the tests, the sanitizers) use checked ones: they catch a
// double or missing resume, and ThreadSanitizer reports a known false race between `withUnsafeContinuation` and
// `resume` (swiftlang/swift#57803) that the checked variant does not trigger.
#if DEBUG
public typealias IOContinuation<T, E: Error> = CheckedContinuation<T, E>

@inlinable @inline(__always)
public func withIOContinuation<T>(_ body: (CheckedContinuation<T, Never>) -> Void) async -> T {
    await withCheckedContinuation(body)
}

@inlinable @inline(__always)
public func withIOThrowingContinuation<T>(_ body: (CheckedContinuation<T, any Error>) -> Void) async throws -> T {
    try await withCheckedThrowingContinuation(body)
}
#else
public typealias IOContinuation<T, E: Error> = UnsafeContinuation<T, E>

@inlinable @inline(__always)
public func withIOContinuation<T>(_ body: (UnsafeContinuation<T, Never>) -> Void) async -> T {
    await withUnsafeContinuation(body)
}

@inlinable @inline(__always)
public func withIOThrowingContinuation<T>(_ body: (UnsafeContinuation<T, any Error>) -> Void) async throws -> T {
    try await withUnsafeThrowingContinuation(body)
}
#endif

import Foundation

/// A value that can be sent as one Redis argument (a bulk string).
///
/// Conformances: `String`, `Substring`, `[UInt8]`, `ArraySlice<UInt8>`, `Data`, the integer types, `Double`,
/// `Float`. Conform your own types by appending their bytes with ``RedisCommand/appendWord(_:)``.
public protocol RedisArgument: Sendable {
    /// Appends this value to `command` as exactly one argument.
    func appendAsRedisArgument(to command: inout RedisCommand)
}

extension String: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(utf8) }
}

extension Substring: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(self) }
}

extension ArraySlice: RedisArgument where Element == UInt8 {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(self) }
}

extension Data: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(self) }
}

extension Int: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(decimal: self) }
}

extension Int64: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(decimal: Int(self)) }
}

extension Int32: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(decimal: Int(self)) }
}

extension UInt32: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(decimal: Int(self)) }
}

extension UInt64: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(String(self).utf8) }
}

extension UInt: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(String(self).utf8) }
}

extension Double: RedisArgument {
    /// Redis parses scores and floats with `strtold`, which reads Swift's shortest round-trip form
    /// (`1.5`, `1e-05`, `inf`, `-inf`).
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(description.utf8) }
}

extension Float: RedisArgument {
    public func appendAsRedisArgument(to command: inout RedisCommand) { command.appendWord(description.utf8) }
}

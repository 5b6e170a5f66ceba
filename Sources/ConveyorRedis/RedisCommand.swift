import ConveyorIO

/// One Redis command, encoded as RESP on the caller's thread so the connection thread only copies bytes.
///
/// Arguments are binary safe: each is sent with its length, so NUL bytes and any byte value round trip.
///
/// ```swift
/// let set = RedisCommand("SET", "user:1", payload, "EX", 60)
/// var mset = RedisCommand("MSET")
/// for (key, value) in pairs { mset.append(key); mset.append(value) }
/// ```
public struct RedisCommand: Sendable {
    /// The command's name as given (`"SET"`); used in error messages and logs, never the argument values.
    public let name: String
    /// The number of words sent, the name included.
    public private(set) var wordCount: Int
    /// `$len\r\nbytes\r\n` for every word; the `*count` header is written by the connection thread.
    private(set) var body: [UInt8]

    /// A command with no arguments yet; add them with ``append(_:)``.
    public init(_ name: String) {
        self.name = name
        wordCount = 0
        body = []
        body.reserveCapacity(name.utf8.count + 32)
        appendWord(name.utf8)
    }

    /// `RedisCommand("SET", key, value)`: a command and its arguments, which may be of different types.
    public init(_ name: String, _ arguments: any RedisArgument...) {
        self.init(name, arguments: arguments)
    }

    /// A command built from an array of arguments.
    public init(_ name: String, arguments: [any RedisArgument]) {
        self.init(name)
        for argument in arguments { argument.appendAsRedisArgument(to: &self) }
    }

    /// Appends one argument.
    public mutating func append(_ argument: some RedisArgument) {
        argument.appendAsRedisArgument(to: &self)
    }

    /// Appends each element as its own argument.
    public mutating func append(contentsOf arguments: some Sequence<any RedisArgument>) {
        for argument in arguments { argument.appendAsRedisArgument(to: &self) }
    }

    /// Appends raw bytes as one argument. ``RedisArgument`` conformances build on this.
    public mutating func appendWord(_ bytes: some Collection<UInt8>) {
        body.append(UInt8(ascii: "$"))
        body.appendDecimal(bytes.count)
        body.append(UInt8(ascii: "\r"))
        body.append(UInt8(ascii: "\n"))
        body.append(contentsOf: bytes)
        body.append(UInt8(ascii: "\r"))
        body.append(UInt8(ascii: "\n"))
        wordCount += 1
    }

    /// Appends an integer as one decimal argument without building a `String`.
    public mutating func appendWord(decimal value: Int) {
        var digits: [UInt8] = []
        digits.appendDecimal(value)
        appendWord(digits)
    }

    /// The `*count\r\n` header that precedes ``body`` on the wire.
    var header: [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "*")]
        bytes.appendDecimal(wordCount)
        bytes.append(UInt8(ascii: "\r"))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// The whole command as sent: header and body.
    var encoded: [UInt8] { header + body }
}

extension RedisCommand: CustomStringConvertible {
    /// The name and argument count only: values may be secrets (`AUTH`) or large.
    public var description: String { "\(name) (\(wordCount - 1) arguments)" }
}

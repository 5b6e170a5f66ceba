/// One reply from Redis (RESP2), copied out of hiredis so it outlives the C reply.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `OK` or `PONG`.
    case simpleString(String)
    /// An error reply. Only appears nested (e.g. inside an `EXEC` result); a top-level error is thrown instead.
    case error(String)
    case integer(Int)
    /// A bulk string: arbitrary bytes, NULs included.
    case bulkString([UInt8])
    /// The null bulk string or null array (a missing key, an expired `BLPOP`...).
    case null
    case array([RESPValue])
}

extension RESPValue {
    /// The value as text: a bulk string decoded as UTF-8, a status, or an integer; `nil` for null, arrays, errors.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        case .error, .null, .array: nil
        }
    }

    /// The raw bytes of a bulk string (or of a status, as UTF-8); `nil` otherwise.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        case .integer, .error, .null, .array: nil
        }
    }

    /// An integer reply, or a string reply that holds a decimal integer (as `GET` of a counter returns).
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int($0) }
        case .error, .null, .array: nil
        }
    }

    /// A number sent as a string (`ZSCORE`, `INCRBYFLOAT`) or an integer.
    public var double: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .bulkString, .simpleString: string.flatMap { Double($0) }
        case .error, .null, .array: nil
        }
    }

    /// The elements of an array reply; `nil` for anything else (including the null array).
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool { self == .null }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let text): text
        case .error(let message): "(error) \(message)"
        case .integer(let value): "(integer) \(value)"
        case .bulkString(let bytes):
            if let text = String(validating: bytes, as: UTF8.self) { "\"\(text)\"" } else { "<\(bytes.count) bytes>" }
        case .null: "(nil)"
        case .array(let elements): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

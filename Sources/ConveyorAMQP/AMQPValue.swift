import Foundation

/// One value of an AMQP field table (message headers, queue arguments).
///
/// Integers travel as signed 32-bit (`I`) when they fit and signed 64-bit (`l`) otherwise; on receipt every
/// integer kind (8 to 64 bits, signed or not) becomes ``int(_:)`` and both float kinds become ``double(_:)``.
/// Timestamps have whole-second precision on the wire.
public enum AMQPValue: Sendable, Hashable {
    case void
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case timestamp(Date)
    case array([AMQPValue])
    case table(AMQPTable)

    /// The string, if this is ``string(_:)``.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer, if this is ``int(_:)``.
    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// The Boolean, if this is ``bool(_:)``.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The table, if this is ``table(_:)``.
    public var tableValue: AMQPTable? {
        if case .table(let value) = self { return value }
        return nil
    }

    /// The elements, if this is ``array(_:)``.
    public var arrayValue: [AMQPValue]? {
        if case .array(let value) = self { return value }
        return nil
    }
}

extension AMQPValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension AMQPValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension AMQPValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension AMQPValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension AMQPValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: AMQPValue...) { self = .array(elements) }
}

extension AMQPValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, AMQPValue)...) {
        self = .table(AMQPTable(elements))
    }
}

extension AMQPValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .void }
}

import ConveyorIO

/// Writes JSON text straight into bytes, for the documents written on every task (the Celery result meta, the
/// delayed message): no `JSONEncoder`, no intermediate `Data` or `String`.
///
/// Object keys of a ``JSONValue`` are written sorted, so equal values give equal bytes.
struct JSONWriter {
    /// How members are separated: Python's `json.dumps` default (`", "`, `": "`), which is what Celery writes, or
    /// compact.
    enum Style {
        case python
        case compact
    }

    private(set) var bytes: [UInt8]
    private let comma: StaticString
    private let colon: StaticString

    init(style: Style = .python, capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
        switch style {
        case .python:
            comma = ", "
            colon = ": "
        case .compact:
            comma = ","
            colon = ":"
        }
    }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ text: some Collection<UInt8>) {
        bytes.append(contentsOf: text)
    }

    /// `, ` between members and elements.
    mutating func separator() { raw(comma) }

    /// `"key": ` (the key is escaped).
    mutating func key(_ name: String) {
        string(name)
        raw(colon)
    }

    /// A member whose key is a plain ASCII literal that needs no escaping.
    mutating func key(_ name: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        raw(name)
        bytes.append(UInt8(ascii: "\""))
        raw(colon)
    }

    mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { string(utf8: $0) }
    }

    mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        var needsEscaping = false
        for byte in utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            needsEscaping = true
            break
        }
        if !needsEscaping {
            bytes.append(contentsOf: utf8)
        } else {
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case UInt8(ascii: "\n"): raw("\\n")
                case UInt8(ascii: "\r"): raw("\\r")
                case UInt8(ascii: "\t"): raw("\\t")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                case 0..<0x20:
                    raw("\\u00")
                    bytes.append(Self.hexDigit(byte >> 4))
                    bytes.append(Self.hexDigit(byte & 0x0F))
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func optionalString(_ text: String?) {
        if let text { string(text) } else { raw("null") }
    }

    mutating func int(_ value: Int64) {
        bytes.appendDecimal(value)
    }

    /// A finite number in Swift's shortest round-trip form (`0.5`, `1e-05`, `3.0`), which JSON and Python read back
    /// exactly; a non-finite one as `null`, since JSON has no NaN or infinity.
    mutating func double(_ value: Double) {
        guard value.isFinite else {
            raw("null")
            return
        }
        raw(value.description.utf8)
    }

    mutating func value(_ value: JSONValue) {
        switch value {
        case .null: raw("null")
        case .bool(let flag): flag ? raw("true") : raw("false")
        case .int(let number): int(number)
        case .double(let number): double(number)
        case .string(let text): string(text)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { separator() }
                self.value(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            object(members)
        }
    }

    mutating func object(_ members: [String: JSONValue]) {
        bytes.append(UInt8(ascii: "{"))
        for (index, name) in members.keys.sorted().enumerated() {
            if index > 0 { separator() }
            key(name)
            if let member = members[name] { value(member) }
        }
        bytes.append(UInt8(ascii: "}"))
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}

extension [UInt8] {
    /// Appends `value` as exactly `width` decimal digits (zero-padded); `value` must be non-negative.
    mutating func appendPadded(_ value: Int64, width: Int) {
        let end = count + width
        append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width))
        var remaining = value
        var index = end - 1
        while remaining > 0, index >= end - width {
            self[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining % 10)
            remaining /= 10
            index -= 1
        }
    }
}

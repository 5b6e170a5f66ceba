/// The grammar every Conveyor server URL shares: `scheme://[user[:password]@]host[:port][/path]`.
///
/// The AMQP and Redis URL types parse with this and then apply their own scheme's rules (default port, what the path
/// means, which schemes they accept), so both read user info, IPv6 hosts, ports and percent escapes the same way.
public struct ServerURL: Sendable, Hashable {
    /// Lowercased.
    public var scheme: String
    /// Percent-decoded; nil when the URL has no user info.
    public var user: String?
    /// Percent-decoded; nil when the user info has no `:`.
    public var password: String?
    /// Percent-decoded, an IPv6 literal without its brackets; empty when the URL names no host.
    public var host: String
    /// In 1...65535 when present.
    public var port: Int?
    /// Everything after the first `/` that follows the host, not decoded; nil when there is no `/`.
    public var path: Substring?

    public enum ParseError: Error, Sendable, Hashable {
        /// There is no `://`: the caller says what it expected.
        case missingScheme
        /// What is wrong, phrased for an error message (no password in it).
        case invalid(String)
    }

    /// Splits `string` into its parts.
    ///
    /// - Throws: ``ParseError/missingScheme``, or ``ParseError/invalid(_:)`` for a query or fragment, an unclosed
    ///   IPv6 bracket, a port that is not a number in 1...65535, a broken percent escape or non-UTF-8 after decoding.
    public init(parsing string: String) throws(ParseError) {
        guard let schemeEnd = string.range(of: "://") else { throw .missingScheme }
        scheme = string[..<schemeEnd.lowerBound].lowercased()
        var rest = string[schemeEnd.upperBound...]
        if rest.contains("?") || rest.contains("#") {
            throw .invalid("query strings and fragments are not supported in '\(Self.redacted(string))'")
        }
        path = nil
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        // A password may itself contain '@' when its writer did not escape it: the last '@' ends the user info.
        var hostPort = rest
        user = nil
        password = nil
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            hostPort = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.percentDecoded(userInfo[..<colon], part: "user")
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], part: "password")
            } else {
                user = try Self.percentDecoded(userInfo, part: "user")
            }
        }

        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw .invalid("unclosed '[' in the IPv6 host") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalid("unexpected '\(after)' after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = try Self.percentDecoded(hostPort[..<colon], part: "host")
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = try Self.percentDecoded(hostPort, part: "host")
        }
        port = nil
        if let portText, !portText.isEmpty {
            guard portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let value = Int(portText), (1...65535).contains(value)
            else { throw .invalid("the port must be a number in 1...65535, got '\(portText)'") }
            port = value
        }
    }

    /// Decodes `%XX` escapes.
    ///
    /// - Throws: ``ParseError/invalid(_:)`` naming `part` for a broken escape or bytes that are not UTF-8.
    public static func percentDecoded(_ text: Substring, part: String) throws(ParseError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.popFirst().flatMap(hexValue), let low = utf8.popFirst().flatMap(hexValue) else {
                throw .invalid("broken percent escape in the \(part)")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw .invalid("the \(part) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    /// Escapes everything but RFC 3986's unreserved characters.
    public static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// A raw URL string with the password (between the user's `:` and the last `@`) masked, for messages about
    /// strings that did not parse.
    public static func redacted(_ raw: String) -> String {
        guard let schemeEnd = raw.range(of: "://"), let at = raw[schemeEnd.upperBound...].lastIndex(of: "@") else {
            return raw
        }
        let userInfo = raw[schemeEnd.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return raw }
        return String(raw[..<colon]) + ":***" + String(raw[at...])
    }

    /// A host for display: IPv6 literals in brackets.
    public static func displayHost(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Where a RabbitMQ broker listens and how to log in: an `amqp://user:pass@host:port/vhost` URL.
///
/// Parsing follows RabbitMQ's URI spec: every part is optional and percent-decoded; the port defaults to 5672,
/// the user and password to `guest`/`guest`, and the virtual host to `/` (an empty path and a bare `/` both mean
/// `/`; the vhost named `/` written out is `%2F`). `description` never shows the password, so a URL can be logged.
public struct AMQPURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String

    /// A URL from its parts.
    public init(
        host: String = "localhost", port: Int = 5672, user: String = "guest", password: String = "guest",
        virtualHost: String = "/"
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.virtualHost = virtualHost
    }

    /// Parses `amqp://user:pass@host:port/vhost`.
    ///
    /// - Throws: ``AMQPError/invalidURL(_:)`` naming what is wrong: a scheme other than `amqp`, a port that is not
    ///   a number in 1...65535, a broken percent escape, an unencoded `/` inside the vhost, query parameters.
    public init(string: String) throws(AMQPError) {
        guard let schemeEnd = string.range(of: "://") else {
            throw .invalidURL("'\(Self.redacting(string))' has no scheme; expected amqp://user:pass@host:port/vhost")
        }
        let scheme = string[..<schemeEnd.lowerBound].lowercased()
        if scheme == "amqps" { throw .invalidURL("amqps (TLS) is not supported by this client") }
        guard scheme == "amqp" else { throw .invalidURL("unsupported scheme '\(scheme)'; expected amqp") }

        var rest = Substring(string[schemeEnd.upperBound...])
        if rest.contains("?") || rest.contains("#") {
            throw .invalidURL("query parameters and fragments are not supported in '\(Self.redacting(string))'")
        }
        var path: Substring?
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        var user = "guest"
        var password = "guest"
        var hostPort = rest
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

        var host = "localhost"
        var port = 5672
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            // An IPv6 literal: [::1]:5672.
            guard let close = hostPort.firstIndex(of: "]") else { throw .invalidURL("unclosed '[' in the host") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidURL("unexpected '\(after)' after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = try Self.percentDecoded(hostPort[..<colon], part: "host")
            portText = hostPort[hostPort.index(after: colon)...]
        } else if !hostPort.isEmpty {
            host = try Self.percentDecoded(hostPort, part: "host")
        }
        if host.isEmpty { host = "localhost" }
        if let portText, !portText.isEmpty {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText),
                (1...65535).contains(value)
            else { throw .invalidURL("port '\(portText)' is not a number in 1...65535") }
            port = value
        }

        var virtualHost = "/"
        if let path, !path.isEmpty {
            if path.contains("/") {
                throw .invalidURL("the vhost '\(path)' contains '/': write a vhost with a slash as %2F")
            }
            virtualHost = try Self.percentDecoded(path, part: "vhost")
        }
        self.init(host: host, port: port, user: user, password: password, virtualHost: virtualHost)
    }

    /// The URL with the password replaced by `***`, safe for logs and error messages.
    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let vhostPart = virtualHost == "/" ? "" : Self.percentEncoded(virtualHost)
        return "amqp://\(Self.percentEncoded(user)):***@\(hostPart):\(port)/\(vhostPart)"
    }

    static func percentDecoded(_ text: Substring, part: String) throws(AMQPError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw .invalidURL("broken percent escape in the \(part)")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw .invalidURL("the \(part) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    static func percentEncoded(_ text: String) -> String {
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

    /// A raw URL string with anything between `://` and `@` after the first `:` masked, for error messages about
    /// strings that did not parse.
    static func redacting(_ raw: String) -> String {
        guard let schemeEnd = raw.range(of: "://"), let at = raw[schemeEnd.upperBound...].lastIndex(of: "@") else {
            return raw
        }
        let userInfo = raw[schemeEnd.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return raw }
        return String(raw[..<colon]) + ":***" + String(raw[at...])
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

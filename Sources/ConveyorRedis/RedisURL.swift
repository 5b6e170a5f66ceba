/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`.
///
/// User and password are percent-decoded; the port defaults to 6379 and the database to 0. IPv6 hosts go in
/// brackets (`redis://[::1]:6380`). ``description`` never shows the password, so a URL can be logged as is.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// The ACL user (Redis 6+); `nil` logs in as the default user.
    public var username: String?
    public var password: String?
    /// The logical database chosen with `SELECT` after connecting.
    public var database: Int

    public static let defaultPort = 6379

    public init(
        host: String, port: Int = RedisURL.defaultPort, username: String? = nil, password: String? = nil,
        database: Int = 0
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// - Throws: ``RedisError/invalidURL(_:)`` naming what is wrong: the scheme (including `rediss://`, as hiredis
    ///   0.14 has no TLS), a missing host, a port outside 1...65535, a database that is not a non-negative integer,
    ///   a query string, or a malformed percent escape.
    public init(string: String) throws(RedisError) {
        guard let schemeEnd = string.range(of: "://") else {
            throw .invalidURL("expected redis://host[:port][/db], got '\(Self.redacted(string))'")
        }
        let scheme = string[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" else {
            if scheme == "rediss" { throw .invalidURL("rediss:// (TLS) is not supported by hiredis 0.14") }
            throw .invalidURL("the scheme must be redis://, not \(scheme)://")
        }
        var rest = string[schemeEnd.upperBound...]
        if rest.contains("?") || rest.contains("#") {
            throw .invalidURL("query strings and fragments are not supported; put the database in the path (/db)")
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        // The password may itself contain '@' when the writer did not escape it: the last '@' ends the user info.
        var hostPort = rest
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            hostPort = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userInfo[..<colon], what: "user")
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], what: "password")
            } else {
                let user = try Self.percentDecoded(userInfo, what: "user")
                username = user.isEmpty ? nil : user
                password = nil
            }
        } else {
            username = nil
            password = nil
        }

        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw .invalidURL("unterminated IPv6 address in '\(hostPort)'")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidURL("unexpected '\(after)' after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = String(hostPort[..<colon])
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = String(hostPort)
        }
        guard !host.isEmpty else { throw .invalidURL("missing host in '\(Self.redacted(string))'") }

        if let portText {
            guard portText.allSatisfy(\.isASCIIDigit), let value = Int(portText), (1...65535).contains(value) else {
                throw .invalidURL("the port must be a number between 1 and 65535, got '\(portText)'")
            }
            port = value
        } else {
            port = Self.defaultPort
        }

        if path.isEmpty {
            database = 0
        } else {
            guard let value = Int(path), value >= 0, path.allSatisfy(\.isASCIIDigit) else {
                throw .invalidURL("the database must be a non-negative integer, got '/\(path)'")
            }
            database = value
        }
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var text = "redis://"
        if username != nil || password != nil {
            text += Self.percentEncoded(username ?? "")
            if password != nil { text += ":***" }
            text += "@"
        }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)/\(database)"
        return text
    }

    /// A URL string that did not parse, with anything that looks like a password hidden, for error messages.
    private static func redacted(_ string: String) -> String {
        guard let schemeEnd = string.range(of: "://"), let at = string.lastIndex(of: "@"),
            at > schemeEnd.upperBound
        else { return string }
        let userInfo = string[schemeEnd.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return string }
        return String(string[..<colon]) + ":***" + String(string[at...])
    }

    private static func percentDecoded(_ text: Substring, what: String) throws(RedisError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.popFirst().flatMap(hexValue), let low = utf8.popFirst().flatMap(hexValue) else {
                throw .invalidURL("malformed percent escape in the \(what)")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if scalar.properties.isAlphabetic && byte < 128 || (byte >= 48 && byte <= 57)
                || "-._~".unicodeScalars
                    .contains(scalar)
            {
                out.unicodeScalars.append(scalar)
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
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

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

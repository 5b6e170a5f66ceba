import ConveyorIO

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
        let parts: ServerURL
        do {
            parts = try ServerURL(parsing: string)
        } catch {
            switch error {
            case .missingScheme:
                throw .invalidURL("expected redis://host[:port][/db], got '\(ServerURL.redacted(string))'")
            case .invalid(let reason):
                throw .invalidURL(reason)
            }
        }
        guard parts.scheme == "redis" else {
            if parts.scheme == "rediss" { throw .invalidURL("rediss:// (TLS) is not supported by hiredis 0.14") }
            throw .invalidURL("the scheme must be redis://, not \(parts.scheme)://")
        }
        guard !parts.host.isEmpty else { throw .invalidURL("missing host in '\(ServerURL.redacted(string))'") }
        var database = 0
        if let path = parts.path, !path.isEmpty {
            guard path.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let value = Int(path)
            else { throw .invalidURL("the database must be a non-negative integer, got '/\(path)'") }
            database = value
        }
        // `redis://:password@host` logs in as the default user.
        let user = parts.user.flatMap { $0.isEmpty ? nil : $0 }
        self.init(
            host: parts.host, port: parts.port ?? Self.defaultPort, username: user, password: parts.password,
            database: database)
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var text = "redis://"
        if username != nil || password != nil {
            text += ServerURL.percentEncoded(username ?? "")
            if password != nil { text += ":***" }
            text += "@"
        }
        text += "\(ServerURL.displayHost(host)):\(port)/\(database)"
        return text
    }
}

import ConveyorIO

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
        let parts: ServerURL
        do {
            parts = try ServerURL(parsing: string)
        } catch {
            switch error {
            case .missingScheme:
                throw .invalidURL(
                    "'\(ServerURL.redacted(string))' has no scheme; expected amqp://user:pass@host:port/vhost")
            case .invalid(let reason):
                throw .invalidURL(reason)
            }
        }
        if parts.scheme == "amqps" { throw .invalidURL("amqps (TLS) is not supported by this client") }
        guard parts.scheme == "amqp" else { throw .invalidURL("unsupported scheme '\(parts.scheme)'; expected amqp") }

        var virtualHost = "/"
        if let path = parts.path, !path.isEmpty {
            if path.contains("/") {
                throw .invalidURL("the vhost '\(path)' contains '/': write a vhost with a slash as %2F")
            }
            do {
                virtualHost = try ServerURL.percentDecoded(path, part: "vhost")
            } catch {
                switch error {
                case .invalid(let reason): throw .invalidURL(reason)
                case .missingScheme: throw .invalidURL("the vhost '\(path)' is not valid")
                }
            }
        }
        self.init(
            host: parts.host.isEmpty ? "localhost" : parts.host, port: parts.port ?? 5672,
            user: parts.user ?? "guest", password: parts.password ?? "guest", virtualHost: virtualHost)
    }

    /// The URL with the password replaced by `***`, safe for logs and error messages.
    public var description: String {
        let vhostPart = virtualHost == "/" ? "" : ServerURL.percentEncoded(virtualHost)
        return "amqp://\(ServerURL.percentEncoded(user)):***@\(ServerURL.displayHost(host)):\(port)/\(vhostPart)"
    }
}

/// An exchange to declare.
public struct AMQPExchange: Sendable, Hashable {
    /// How an exchange routes: by exact key, to every bound queue, by pattern, or by headers.
    public struct Kind: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { rawValue = value }

        public static let direct = Kind(rawValue: "direct")
        public static let fanout = Kind(rawValue: "fanout")
        public static let topic = Kind(rawValue: "topic")
        public static let headers = Kind(rawValue: "headers")
    }

    public var name: String
    public var kind: Kind
    /// Survives a broker restart (default).
    public var durable: Bool
    /// Deleted when its last binding goes.
    public var autoDelete: Bool
    /// Publishers cannot publish to it directly; only other exchanges route to it.
    public var `internal`: Bool
    public var arguments: AMQPTable

    public init(
        _ name: String, kind: Kind = .direct, durable: Bool = true, autoDelete: Bool = false, internal: Bool = false,
        arguments: AMQPTable = [:]
    ) {
        self.name = name
        self.kind = kind
        self.durable = durable
        self.autoDelete = autoDelete
        self.internal = `internal`
        self.arguments = arguments
    }
}

/// An AMQP field table: string keys to ``AMQPValue``s.
///
/// Used for message headers and for queue, exchange, binding and consumer arguments.
public struct AMQPTable: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public var fields: [String: AMQPValue]

    public init() { fields = [:] }

    public init(_ fields: [String: AMQPValue]) { self.fields = fields }

    /// A table from key-value pairs; a repeated key keeps its last value.
    public init(_ pairs: some Sequence<(String, AMQPValue)>) {
        fields = Dictionary(pairs, uniquingKeysWith: { _, last in last })
    }

    public init(dictionaryLiteral elements: (String, AMQPValue)...) { self.init(elements) }

    public subscript(key: String) -> AMQPValue? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public func makeIterator() -> Dictionary<String, AMQPValue>.Iterator { fields.makeIterator() }
}

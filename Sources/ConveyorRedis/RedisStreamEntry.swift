/// One entry of a Redis stream: its id (`<ms>-<seq>`) and its fields, in the order they were added.
public struct RedisStreamEntry: Sendable, Hashable {
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: [UInt8]

        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    public var id: String
    public var fields: [Field]

    public init(id: String, fields: [Field]) {
        self.id = id
        self.fields = fields
    }

    /// The value of the first field called `name`.
    public subscript(name: String) -> [UInt8]? {
        fields.first { $0.name == name }?.value
    }

    /// Parses `[id, [field, value, ...]]` as `XRANGE`/`XREAD` return it.
    init?(_ reply: RESPValue) {
        guard let pair = reply.array, pair.count == 2, let id = pair[0].string, let flat = pair[1].array else {
            return nil
        }
        var fields: [Field] = []
        fields.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            guard let name = flat[index].string, let value = flat[index + 1].bytes else { return nil }
            fields.append(Field(name: name, value: value))
            index += 2
        }
        self.init(id: id, fields: fields)
    }
}

extension RedisKeys {
    /// `P stream:<id>`: a generator's items, end marker or error marker (a Redis stream; docs/PROTOCOL.md,
    /// "Generators").
    public func stream(_ id: String) -> String { prefix + "stream:" + id }

    /// `P stream:<id>:read`: how many items of the generator the recording consumer has taken (a decimal string),
    /// also the channel each advance is published on, so a producer held at its backpressure bound wakes at once.
    public func streamRead(_ id: String) -> String { prefix + "stream:" + id + ":read" }
}

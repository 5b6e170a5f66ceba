extension RedisKeys {
    /// `P actor:<id>`: the actor's registry record (hash; docs/PROTOCOL.md lists its fields).
    public func actor(_ id: String) -> String { prefix + "actor:" + id }
    /// `P actor-name:<namespace>:<name>`: the id of the live actor with that name.
    public func actorName(_ name: String, namespace: String) -> String {
        prefix + "actor-name:" + namespace + ":" + name
    }
    /// `P actors`: the ids of every live actor (set), what workers and `conveyor inspect actors` scan.
    public var actors: String { prefix + "actors" }
    /// `P actor-snapshot:<id>`: a durable actor's last snapshot (JSON).
    public func actorSnapshot(_ id: String) -> String { prefix + "actor-snapshot:" + id }
    /// `P actor-events`: pub/sub channel of `created <id> <type>`, `killed <id>` and `dead <id>`.
    public var actorEvents: String { prefix + "actor-events" }
    /// `P fifo:<name>`: a distributed FIFO queue's items (list).
    public func fifo(_ name: String) -> String { prefix + "fifo:" + name }
}

/// What can go wrong reading or writing task state, besides the ``ConveyorRedis/RedisError``s of the connection.
public enum TaskStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A script answered with something its Swift side does not understand: a different script version is loaded
    /// under the same keys, or the keys were written by something else.
    case unexpectedReply(script: String, reply: String)
    /// A `celery-task-meta-<id>` value is not a Celery result document.
    case invalidResultMeta(String)
    /// A delayed message (`P delayed:msg`) is not in the documented format.
    case invalidDelayedMessage(String)

    public var description: String {
        switch self {
        case .unexpectedReply(let script, let reply): "unexpected reply from the \(script) script: \(reply)"
        case .invalidResultMeta(let reason): "invalid Celery result meta: \(reason)"
        case .invalidDelayedMessage(let reason): "invalid delayed message: \(reason)"
        }
    }
}

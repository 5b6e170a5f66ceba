import ConveyorRedis

/// Conveyor's task state in Redis: claims with leases and fencing tokens, outcomes written as Celery results, the
/// delay set, revocations and worker heartbeats (DESIGN §4–5, docs/PROTOCOL.md).
///
/// Every state transition is one Lua script, so each is atomic and costs one round trip. A worker's hot path is
/// ``claim(_:worker:name:queue:lease:expiresMs:maxAttempts:replyTo:now:)`` before a task runs and
/// ``finish(_:token:outcome:replyTo:storeResult:extended:now:)`` after.
///
/// Times are Unix milliseconds. Every `now` parameter defaults to `nil`: Redis's own clock, so leases do not
/// depend on the workers' clocks agreeing; tests pass explicit times to move through leases without waiting.
///
/// - Important: a `TaskStore` is a value that shares its connection; copy it freely, use it from any task.
public struct TaskStore: Sendable {
    /// Key names, TTLs.
    public struct Configuration: Sendable, Hashable {
        public var keys: RedisKeys
        /// How long task records, results and the per-state indexes live after their last change (whole seconds);
        /// Celery's `result_expires`, one day by default.
        public var resultTTL: Duration
        /// How long a revocation tombstone lives (whole seconds); seven days by default.
        public var revocationTTL: Duration

        /// The defaults: prefix `conveyor:`, results kept one day, tombstones seven days.
        public init(
            keys: RedisKeys = RedisKeys(), resultTTL: Duration = .seconds(86_400),
            revocationTTL: Duration = .seconds(7 * 86_400)
        ) {
            self.keys = keys
            self.resultTTL = resultTTL
            self.revocationTTL = revocationTTL
        }
    }

    /// The connection (a ``RedisClient`` or a ``RedisConnection``) every script and read goes over.
    public let redis: any RedisCommandSender
    public let configuration: Configuration
    /// ``Configuration/resultTTL`` in seconds, computed once: it is an argument of every transition.
    let resultTTLSeconds: Int
    let revocationTTLSeconds: Int

    /// A store over `redis`: a ``RedisClient`` (its shared pipelined connection) or a ``RedisConnection``.
    public init(redis: any RedisCommandSender, configuration: Configuration = Configuration()) {
        self.redis = redis
        self.configuration = configuration
        resultTTLSeconds = max(1, Int(configuration.resultTTL.components.seconds))
        revocationTTLSeconds = max(1, Int(configuration.revocationTTL.components.seconds))
    }

    public var keys: RedisKeys { configuration.keys }

    /// Runs one of the state scripts.
    func run(
        _ script: RedisScript, keys: [any RedisArgument], arguments: [any RedisArgument]
    ) async throws -> RESPValue {
        try await redis.evalScript(script, keys: keys, arguments: arguments)
    }
}

extension Duration {
    /// Whole milliseconds (at least 1): what leases and delays are given in.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

/// Decoding the small arrays the scripts return.
enum ScriptReply {
    /// The reply's elements and its tag (the first element), or an error naming the script.
    static func tagged(_ reply: RESPValue, script: String) throws(TaskStoreError) -> (tag: [UInt8], fields: [RESPValue])
    {
        guard case .array(let fields) = reply, let first = fields.first, case .bulkString(let tag) = first else {
            throw .unexpectedReply(script: script, reply: reply.description)
        }
        return (tag, fields)
    }

    static func int(_ fields: [RESPValue], _ index: Int, script: String) throws(TaskStoreError) -> Int64 {
        guard index < fields.count, let value = fields[index].int else {
            throw .unexpectedReply(script: script, reply: RESPValue.array(fields).description)
        }
        return Int64(value)
    }

    static func string(_ fields: [RESPValue], _ index: Int, script: String) throws(TaskStoreError) -> String {
        guard index < fields.count, let value = fields[index].string else {
            throw .unexpectedReply(script: script, reply: RESPValue.array(fields).description)
        }
        return value
    }

    static func state(_ fields: [RESPValue], _ index: Int, script: String) throws(TaskStoreError) -> TaskState {
        guard let state = TaskState(rawValue: try string(fields, index, script: script)) else {
            throw .unexpectedReply(script: script, reply: RESPValue.array(fields).description)
        }
        return state
    }

    static func unexpected(_ fields: [RESPValue], script: String) -> TaskStoreError {
        .unexpectedReply(script: script, reply: RESPValue.array(fields).description)
    }

    // Tags compared as bytes: no String made per call.
    static let run = Array("run".utf8)
    static let finished = Array("finished".utf8)
    static let revoked = Array("revoked".utf8)
    static let expired = Array("expired".utf8)
    static let leased = Array("leased".utf8)
    static let poison = Array("poison".utf8)
    static let recorded = Array("recorded".utf8)
    static let fenced = Array("fenced".utf8)
    static let running = Array("running".utf8)
    static let throttled = Array("throttled".utf8)
    static let capped = Array("capped".utf8)
}

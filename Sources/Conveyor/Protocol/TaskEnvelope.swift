import Foundation

/// One task message, as Celery's message protocol v2 defines it (DESIGN §3).
///
/// The envelope is what producers publish and workers consume: Celery's headers, its `[args, kwargs, embed]`
/// body, and Conveyor's own `conveyor_*` headers, which Celery ignores. `TaskEnvelope+Celery.swift` maps it to and
/// from the wire.
public struct TaskEnvelope: Sendable, Equatable {
    /// The task id (a UUID string), also the message's `correlation_id`.
    public var id: String
    /// The registered task name, e.g. `images.resize`.
    public var task: String
    public var args: [JSONValue]
    public var kwargs: [String: JSONValue]
    /// Celery's canvas fields (`callbacks`, `errbacks`, `chain`, `chord`), carried through unchanged.
    public var embed: [String: JSONValue]
    public var rootID: String?
    public var parentID: String?
    public var group: String?
    public var groupIndex: Int?
    /// How many times this task was retried before this message.
    public var retries: Int
    /// Do not run before this time.
    public var eta: Date?
    /// Do not run after this time: the task is revoked (expired) instead.
    public var expires: Date?
    public var timeLimit: TimeLimit
    public var argsrepr: String?
    public var kwargsrepr: String?
    /// Who sent it (`host` or `pid@host`).
    public var origin: String?
    public var ignoreResult: Bool
    /// A display name that replaces `task` in logs (Celery's `shadow`).
    public var shadow: String?
    /// The producer's language: `py` for Celery, `swift` for Conveyor.
    public var lang: String
    public var replyTo: String?
    /// 0–9, higher first, on priority-enabled queues.
    public var priority: UInt8?
    /// Conveyor's own headers, keyed without their `conveyor_` prefix (see ``ConveyorHeader``).
    public var conveyor: [String: JSONValue]
    /// Headers neither Celery's nor Conveyor's (Celery's `stamps`, say), kept so a forwarded message loses nothing.
    public var otherHeaders: [String: JSONValue]

    /// Celery's `timelimit` header: `[hard, soft]` in seconds, each optional.
    public struct TimeLimit: Sendable, Equatable {
        public var hard: Double?
        public var soft: Double?
        public init(hard: Double? = nil, soft: Double? = nil) {
            self.hard = hard
            self.soft = soft
        }
    }

    public init(
        id: String = TaskID.make(),
        task: String,
        args: [JSONValue] = [],
        kwargs: [String: JSONValue] = [:],
        embed: [String: JSONValue] = [:],
        rootID: String? = nil,
        parentID: String? = nil,
        group: String? = nil,
        groupIndex: Int? = nil,
        retries: Int = 0,
        eta: Date? = nil,
        expires: Date? = nil,
        timeLimit: TimeLimit = .init(),
        argsrepr: String? = nil,
        kwargsrepr: String? = nil,
        origin: String? = nil,
        ignoreResult: Bool = false,
        shadow: String? = nil,
        lang: String = "swift",
        replyTo: String? = nil,
        priority: UInt8? = nil,
        conveyor: [String: JSONValue] = [:],
        otherHeaders: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.embed = embed
        self.rootID = rootID
        self.parentID = parentID
        self.group = group
        self.groupIndex = groupIndex
        self.retries = retries
        self.eta = eta
        self.expires = expires
        self.timeLimit = timeLimit
        self.argsrepr = argsrepr
        self.kwargsrepr = kwargsrepr
        self.origin = origin
        self.ignoreResult = ignoreResult
        self.shadow = shadow
        self.lang = lang
        self.replyTo = replyTo
        self.priority = priority
        self.conveyor = conveyor
        self.otherHeaders = otherHeaders
    }
}

/// The `conveyor_*` headers Conveyor itself reads. Celery ignores headers it does not know.
public enum ConveyorHeader: String, Sendable, CaseIterable {
    /// `task`, `stream`, `actor-create` or `actor-call`; absent means `task` (every Celery message).
    case kind
    /// The producer's idempotency key; the same key within its TTL names the same task.
    case idempotencyKey = "idempotency_key"
    /// The actor a call or creation is for.
    case actorID = "actor_id"
    /// The key a per-key rate limit is counted under.
    case rateLimitKey = "rate_limit_key"
    /// When the producer sent the message (Unix ms), for the time-spent-queued metric.
    case sentMs = "sent_ms"
    /// A generator's backpressure bound: at most this many items produced but not yet read by the consumer that
    /// records its position (docs/PROTOCOL.md, "Generators").
    case streamBound = "stream_bound"
    /// Why a message was dead-lettered, a short code (set on the copy in the dead-letter queue): `malformed`,
    /// `unknown-task`, `invalid-input`, `payload-too-large`, `delivery-limit`.
    case deadLetterReason = "dead_letter_reason"
    /// The dead-lettered message's reason in words.
    case deadLetterDetail = "dead_letter_detail"
    /// The queue a dead-lettered message came from.
    case deadLetterQueue = "dead_letter_queue"
    /// The worker that dead-lettered it.
    case deadLetterWorker = "dead_letter_worker"

    /// The AMQP header name.
    public var headerName: String { "conveyor_" + rawValue }
}

/// What kind of work an envelope carries.
public enum TaskKind: String, Sendable, Codable, CaseIterable {
    case task
    case stream
    case actorCreate = "actor-create"
    case actorCall = "actor-call"
}

extension TaskEnvelope {
    public var kind: TaskKind {
        get { conveyor[ConveyorHeader.kind.rawValue]?.stringValue.flatMap(TaskKind.init(rawValue:)) ?? .task }
        set { conveyor[ConveyorHeader.kind.rawValue] = newValue == .task ? nil : .string(newValue.rawValue) }
    }

    public var idempotencyKey: String? {
        get { conveyor[ConveyorHeader.idempotencyKey.rawValue]?.stringValue }
        set { conveyor[ConveyorHeader.idempotencyKey.rawValue] = newValue.map(JSONValue.string) }
    }
}

import ConveyorIO

/// What a subscription listens to.
enum SubscriptionKind: Sendable {
    case channels([String])
    case patterns([String])
    /// One exact channel, delivered from a pattern subscription shared with every other route of that pattern.
    case routed(pattern: String, channel: String)

    /// What Redis must be subscribed to for it, without duplicates.
    var targets: [SubscriptionTarget] {
        switch self {
        case .channels(let channels): Self.unique(channels).map { .channel($0) }
        case .patterns(let patterns): Self.unique(patterns).map { .pattern($0) }
        case .routed(let pattern, _): [.pattern(pattern)]
        }
    }

    private static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// A channel or pattern as Redis knows it: what `SUBSCRIBE` / `PSUBSCRIBE` confirmations name.
enum SubscriptionTarget: Hashable, Sendable {
    case channel(String)
    case pattern(String)
}

typealias SubscribeContinuation = CheckedContinuation<Result<Void, RedisError>, Never>

/// One `subscribe` call, answered once Redis confirmed every one of its targets.
///
/// - Important: created by the caller, then touched only on the subscriber's thread.
// Safe: after `push` the mutable fields (`remaining`, `finished`) are used only on the subscriber's thread.
final class SubscribeRequest: @unchecked Sendable {
    let id: UInt64
    let kind: SubscriptionKind
    let sink: AsyncStream<RedisMessage>.Continuation
    let continuation: SubscribeContinuation
    let deadline: ContinuousClock.Instant
    let timeout: Duration
    var remaining: Int
    var finished = false

    init(
        id: UInt64, kind: SubscriptionKind, sink: AsyncStream<RedisMessage>.Continuation,
        continuation: SubscribeContinuation, deadline: ContinuousClock.Instant, timeout: Duration
    ) {
        self.id = id
        self.kind = kind
        self.sink = sink
        self.continuation = continuation
        self.deadline = deadline
        self.timeout = timeout
        remaining = kind.targets.count
    }

    var operation: String {
        switch kind {
        case .channels: "SUBSCRIBE"
        case .patterns, .routed: "PSUBSCRIBE"
        }
    }
}

/// Work for the subscriber's thread.
enum SubscriberRequest: Sendable {
    case subscribe(SubscribeRequest)
    case unsubscribe(UInt64)
    case watchReconnections(UInt64, AsyncStream<Void>.Continuation)
    case unwatchReconnections(UInt64)
}

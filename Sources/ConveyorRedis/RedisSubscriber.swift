import ConveyorIO
import Logging

/// Redis pub/sub on a connection of its own, with any number of subscriptions multiplexed on it.
///
/// Each channel or pattern is subscribed once in Redis however many local subscriptions want it; messages are
/// fanned out in Swift. After a reconnect every subscription is restored by itself.
///
/// For many waiters on channels that share a prefix (thousands of task results), subscribe to the pattern once
/// and route by channel name in Swift with ``subscribe(channel:viaPattern:timeout:)``: one `PSUBSCRIBE` for all of
/// them, a dictionary lookup per message.
public final class RedisSubscriber: Sendable {
    public let configuration: RedisConfiguration
    private let runner: ConnectionRunner
    private let driver: RedisSubscriberDriver
    /// `true` once closed; checked under the same lock as every push so nothing reaches the inbox after the
    /// thread's final drain.
    private let closed = LockedValue(false)
    private let nextID = LockedValue<UInt64>(0)

    private init(configuration: RedisConfiguration, runner: ConnectionRunner, driver: RedisSubscriberDriver) {
        self.configuration = configuration
        self.runner = runner
        self.driver = driver
    }

    deinit {
        if !closed.current {
            let runner = self.runner
            Task { await runner.stop() }
        }
    }

    /// Opens the pub/sub connection.
    ///
    /// - Throws: the first attempt's error, as ``RedisConnection/connect(_:)``.
    public static func connect(_ configuration: RedisConfiguration) async throws -> RedisSubscriber {
        let driver = RedisSubscriberDriver(configuration: configuration)
        let runner = try await ConnectionRunner.start(
            name: "redis-sub \(configuration.url.host):\(configuration.url.port)", driver: driver,
            policy: configuration.policy, logger: configuration.logger)
        return RedisSubscriber(configuration: configuration, runner: runner, driver: driver)
    }

    /// Subscribes to `channels`; returns once Redis confirmed them, so a message published afterwards arrives.
    ///
    /// - Throws: ``RedisError/timeout(operation:after:)`` or ``RedisError/unavailable(lastError:)`` when not
    ///   confirmed before the deadline (`timeout`, or the policy's `operationTimeout`), ``RedisError/closed``.
    public func subscribe(_ channels: [String], timeout: Duration? = nil) async throws -> RedisSubscription {
        try await start(.channels(channels), timeout: timeout)
    }

    /// Subscribes to channels matching glob-style `patterns` (`PSUBSCRIBE`); messages carry the pattern.
    ///
    /// - Throws: as ``subscribe(_:timeout:)``.
    public func psubscribe(_ patterns: [String], timeout: Duration? = nil) async throws -> RedisSubscription {
        try await start(.patterns(patterns), timeout: timeout)
    }

    /// Receives the messages of one exact `channel` through a pattern subscription shared with every other
    /// channel routed the same way: `pattern` must match `channel` (e.g. `conveyor:result:*`).
    ///
    /// - Throws: as ``subscribe(_:timeout:)``.
    public func subscribe(
        channel: String, viaPattern pattern: String, timeout: Duration? = nil
    ) async throws
        -> RedisSubscription
    {
        try await start(.routed(pattern: pattern, channel: channel), timeout: timeout)
    }

    /// Yields each time the subscriber reconnected and all its subscriptions are active again.
    ///
    /// Messages published while it was disconnected are lost, so a waiter whose state may have changed meanwhile
    /// (a task result) should re-read that state when this yields.
    public func reconnections() -> AsyncStream<Void> {
        let id = nextID.withLock { id -> UInt64 in
            id += 1
            return id
        }
        let (stream, sink) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let inbox = driver.inbox
        sink.onTermination = { _ in inbox.push(.unwatchReconnections(id)) }
        if !push(.watchReconnections(id, sink)) { sink.finish() }
        return stream
    }

    /// Closes the connection: every subscription's sequence finishes. Returns once its thread has finished.
    public func close() async {
        closed.withLock { $0 = true }
        await runner.stop()
    }

    private func start(_ kind: SubscriptionKind, timeout: Duration?) async throws -> RedisSubscription {
        // Nothing would ever confirm an empty subscription; Redis itself rejects `SUBSCRIBE` without channels.
        if kind.targets.isEmpty { throw RedisError.server("ERR wrong number of arguments for 'subscribe' command") }
        let timeout = timeout ?? configuration.policy.operationTimeout
        let deadline = ContinuousClock.now + timeout
        let id = nextID.withLock { id -> UInt64 in
            id += 1
            return id
        }
        let (stream, sink) = AsyncStream<RedisMessage>.makeStream()
        let inbox = driver.inbox
        // Ending iteration (cancellation, or dropping the sequence) drops the subscription.
        sink.onTermination = { _ in inbox.push(.unsubscribe(id)) }
        let result = await withCheckedContinuation { (continuation: SubscribeContinuation) in
            let request = SubscribeRequest(
                id: id, kind: kind, sink: sink, continuation: continuation, deadline: deadline, timeout: timeout)
            if !push(.subscribe(request)) {
                sink.finish()
                continuation.resume(returning: .failure(.closed))
            }
        }
        try result.get()
        return RedisSubscription(stream: stream, id: id, inbox: inbox)
    }

    private func push(_ request: SubscriberRequest) -> Bool {
        closed.withLock { closed in
            guard !closed else { return false }
            driver.inbox.push(request)
            return true
        }
    }
}

import ConveyorIO
import DequeModule
import Logging

/// Drives a pub/sub connection on its ``ConnectionRunner`` thread: one `SUBSCRIBE`/`PSUBSCRIBE` per target shared
/// by every local subscription that wants it, messages fanned out in Swift, everything re-subscribed after a
/// reconnect.
///
/// - Important: everything except `inbox` and `wakeup` is touched only on the runner's thread.
// Safe: the mutable state is confined to the runner's thread (see above); `inbox` and `wakeup` synchronise
// themselves.
final class RedisSubscriberDriver: ConnectionDriver, @unchecked Sendable {
    typealias Sink = AsyncStream<RedisMessage>.Continuation

    private struct PatternInterest {
        var sinks: [UInt64: Sink] = [:]
        /// Exact channels dispatched from this pattern's messages: channel → subscriptions.
        var routes: [String: [UInt64: Sink]] = [:]
        var isEmpty: Bool { sinks.isEmpty && routes.isEmpty }
    }

    let wakeup: Wakeup
    let inbox: Inbox<SubscriberRequest>
    private let url: RedisURL
    private let policy: ReconnectPolicy
    private let logger: Logger

    private var context: RedisContext?
    private var registrations: [UInt64: SubscriptionKind] = [:]
    private var sinks: [UInt64: Sink] = [:]
    private var channels: [String: [UInt64: Sink]] = [:]
    private var patterns: [String: PatternInterest] = [:]
    /// Per target, one entry per `(P)SUBSCRIBE` sent and not yet confirmed: the requests that confirmation answers.
    private var confirmations: [SubscriptionTarget: Deque<[SubscribeRequest]>] = [:]
    private var open: [UInt64: SubscribeRequest] = [:]
    private var reconnectWatchers: [UInt64: AsyncStream<Void>.Continuation] = [:]
    /// PINGs sent after a re-subscribe: their PONG means every subscription before it is active again.
    private var pingsAfterResubscribe = 0
    private var completions: [(SubscribeContinuation, Result<Void, RedisError>)] = []
    private var nextDeadline = ContinuousClock.Instant.distantFuture
    private var lastError: (any Error)?
    /// An append that failed during this pass: the connection is dropped at the end of the pass, and what was
    /// registered is subscribed again after the reconnect.
    private var writeFailure: RedisError?

    init(configuration: RedisConfiguration) {
        wakeup = Wakeup()
        inbox = Inbox(wakeup: wakeup)
        url = configuration.url
        policy = configuration.policy
        logger = configuration.logger
    }

    func connect(timeout: Duration) throws {
        context = nil
        let context = try RedisContext.connect(url: url, timeout: timeout, keepalive: policy.heartbeat)
        let wasReconnect = lastError != nil
        // Everything wanted is subscribed again; each target gets exactly one confirmation, answering every
        // request that was still waiting for it.
        var resubscribed: [SubscriptionTarget: Deque<[SubscribeRequest]>] = [:]
        let channelNames = channels.filter { !$0.value.isEmpty }.map(\.key)
        let patternNames = patterns.filter { !$0.value.isEmpty }.map(\.key)
        for name in channelNames {
            resubscribed[.channel(name)] = [confirmations[.channel(name)]?.flatMap { $0 } ?? []]
        }
        for name in patternNames {
            resubscribed[.pattern(name)] = [confirmations[.pattern(name)]?.flatMap { $0 } ?? []]
        }
        if !channelNames.isEmpty { try context.append(RedisCommand("SUBSCRIBE", arguments: channelNames)) }
        if !patternNames.isEmpty { try context.append(RedisCommand("PSUBSCRIBE", arguments: patternNames)) }
        pingsAfterResubscribe = 0
        if wasReconnect {
            try context.append(RedisCommand("PING"))
            pingsAfterResubscribe = 1
        }
        confirmations = resubscribed
        self.context = context
    }

    func serve(maxWait: Duration) throws {
        guard let context else { throw RedisError.connectionLost("not connected") }
        var failure: RedisError?
        do throws(RedisError) {
            for request in inbox.drain() { handle(request) }
            if let writeFailure { throw writeFailure }
            if context.pendingOutput > 0 { try context.flush() }
            let socket = context.waitForSocket(
                wakeup: wakeup, maxWait: maxWait, nextDeadline: nextDeadline, settledThisPass: !completions.isEmpty)
            if socket.readable || socket.failed {
                try context.read()
                while let reply = try context.nextReply() { dispatch(reply) }
            }
            if socket.writable, context.pendingOutput > 0 { try context.flush() }
        } catch {
            failure = error
        }
        if ContinuousClock.now >= nextDeadline { expireDeadlines() }
        finishPass()
        if let failure = failure ?? writeFailure {
            writeFailure = nil
            throw failure
        }
    }

    func connectionLost(_ error: any Error) {
        lastError = error
        context = nil
        writeFailure = nil
        // Requests still waiting are answered by the confirmations of the re-subscribe after the reconnect.
        var merged: [SubscriptionTarget: Deque<[SubscribeRequest]>] = [:]
        for (target, entries) in confirmations {
            let waiting = entries.flatMap { $0 }.filter { !$0.finished }
            if !waiting.isEmpty { merged[target] = [waiting] }
        }
        confirmations = merged
    }

    func serveDisconnected(lastError: any Error) {
        self.lastError = lastError
        for request in inbox.drain() { handle(request) }
        if ContinuousClock.now >= nextDeadline { expireDeadlines() }
        finishPass()
    }

    func shutdown() {
        for request in inbox.drain() {
            switch request {
            case .subscribe(let request):
                request.sink.finish()
                completions.append((request.continuation, .failure(.closed)))
            case .watchReconnections(_, let sink): sink.finish()
            case .unsubscribe, .unwatchReconnections: break
            }
        }
        for request in open.values where !request.finished {
            request.finished = true
            completions.append((request.continuation, .failure(.closed)))
        }
        open.removeAll()
        for sink in sinks.values { sink.finish() }
        for sink in reconnectWatchers.values { sink.finish() }
        sinks.removeAll()
        reconnectWatchers.removeAll()
        registrations.removeAll()
        channels.removeAll()
        patterns.removeAll()
        context = nil
        finishPass()
    }

    // MARK: - Requests

    private func handle(_ request: SubscriberRequest) {
        switch request {
        case .subscribe(let request): subscribe(request)
        case .unsubscribe(let id): unsubscribe(id)
        case .watchReconnections(let id, let sink): reconnectWatchers[id] = sink
        case .unwatchReconnections(let id): reconnectWatchers.removeValue(forKey: id)?.finish()
        }
    }

    private func subscribe(_ request: SubscribeRequest) {
        guard request.deadline > .now else {
            request.sink.finish()
            completions.append((request.continuation, .failure(timeoutError(for: request))))
            return
        }
        registrations[request.id] = request.kind
        sinks[request.id] = request.sink
        switch request.kind {
        case .channels(let names):
            for name in names { channels[name, default: [:]][request.id] = request.sink }
        case .patterns(let names):
            for name in names { patterns[name, default: PatternInterest()].sinks[request.id] = request.sink }
        case .routed(let pattern, let channel):
            patterns[pattern, default: PatternInterest()].routes[channel, default: [:]][request.id] = request.sink
        }
        open[request.id] = request
        nextDeadline = min(nextDeadline, request.deadline)
        let targets = request.kind.targets
        guard context != nil, writeFailure == nil else {
            // Sent with everything else when the connection is back.
            for target in targets {
                if confirmations[target]?.isEmpty ?? true {
                    confirmations[target] = [[request]]
                } else {
                    confirmations[target]?[0].append(request)
                }
            }
            return
        }
        for target in targets { confirmations[target, default: []].append([request]) }
        let channelNames = targets.compactMap { if case .channel(let name) = $0 { name } else { nil } }
        let patternNames = targets.compactMap { if case .pattern(let name) = $0 { name } else { nil } }
        if !channelNames.isEmpty { send(RedisCommand("SUBSCRIBE", arguments: channelNames)) }
        if !patternNames.isEmpty { send(RedisCommand("PSUBSCRIBE", arguments: patternNames)) }
    }

    /// Appends a command unless disconnected (a reconnect re-subscribes everything registered anyway).
    private func send(_ command: RedisCommand) {
        guard let context, writeFailure == nil else { return }
        do {
            try context.append(command)
        } catch {
            writeFailure = error
        }
    }

    private func unsubscribe(_ id: UInt64) {
        guard let kind = registrations.removeValue(forKey: id) else { return }
        sinks.removeValue(forKey: id)?.finish()
        if let request = open.removeValue(forKey: id), !request.finished {
            request.finished = true
            completions.append((request.continuation, .failure(.closed)))
        }
        var droppedChannels: [String] = []
        var droppedPatterns: [String] = []
        switch kind {
        case .channels(let names):
            for name in Set(names) {
                channels[name]?.removeValue(forKey: id)
                if channels[name]?.isEmpty ?? false {
                    channels.removeValue(forKey: name)
                    droppedChannels.append(name)
                }
            }
        case .patterns(let names):
            for name in Set(names) {
                patterns[name]?.sinks.removeValue(forKey: id)
                if patterns[name]?.isEmpty ?? false {
                    patterns.removeValue(forKey: name)
                    droppedPatterns.append(name)
                }
            }
        case .routed(let pattern, let channel):
            patterns[pattern]?.routes[channel]?.removeValue(forKey: id)
            if patterns[pattern]?.routes[channel]?.isEmpty ?? false {
                patterns[pattern]?.routes.removeValue(forKey: channel)
            }
            if patterns[pattern]?.isEmpty ?? false {
                patterns.removeValue(forKey: pattern)
                droppedPatterns.append(pattern)
            }
        }
        if !droppedChannels.isEmpty { send(RedisCommand("UNSUBSCRIBE", arguments: droppedChannels)) }
        if !droppedPatterns.isEmpty { send(RedisCommand("PUNSUBSCRIBE", arguments: droppedPatterns)) }
    }

    // MARK: - Replies

    private func dispatch(_ reply: RESPValue) {
        guard let parts = reply.array, let kind = parts.first?.string else {
            switch reply {
            case .simpleString("PONG"): resubscribeConfirmed()
            case .error(let message): logger.warning("Redis pub/sub error", metadata: ["error": "\(message)"])
            default: logger.warning("unexpected Redis pub/sub reply", metadata: ["reply": "\(reply)"])
            }
            return
        }
        switch kind {
        case "message" where parts.count == 3:
            guard let channel = parts[1].string, let payload = parts[2].bytes, let targets = channels[channel] else {
                return
            }
            let message = RedisMessage(channel: channel, payload: payload)
            for sink in targets.values { sink.yield(message) }
        case "pmessage" where parts.count == 4:
            guard let pattern = parts[1].string, let channel = parts[2].string, let payload = parts[3].bytes,
                let interest = patterns[pattern]
            else { return }
            let message = RedisMessage(channel: channel, pattern: pattern, payload: payload)
            for sink in interest.sinks.values { sink.yield(message) }
            if let routed = interest.routes[channel] {
                for sink in routed.values { sink.yield(message) }
            }
        case "subscribe":
            if let name = parts.dropFirst().first?.string { confirm(.channel(name)) }
        case "psubscribe":
            if let name = parts.dropFirst().first?.string { confirm(.pattern(name)) }
        case "pong":
            resubscribeConfirmed()
        default:
            break  // unsubscribe / punsubscribe confirmations: nothing waits for them.
        }
    }

    private func confirm(_ target: SubscriptionTarget) {
        guard let requests = confirmations[target]?.popFirst() else { return }
        if confirmations[target]?.isEmpty ?? false { confirmations.removeValue(forKey: target) }
        for request in requests where !request.finished {
            request.remaining -= 1
            if request.remaining == 0 {
                request.finished = true
                open.removeValue(forKey: request.id)
                completions.append((request.continuation, .success(())))
            }
        }
    }

    private func resubscribeConfirmed() {
        guard pingsAfterResubscribe > 0 else { return }
        pingsAfterResubscribe -= 1
        logger.info("Redis subscriptions restored after reconnect", metadata: ["redis": "\(url)"])
        for watcher in reconnectWatchers.values { watcher.yield(()) }
    }

    // MARK: - Deadlines

    private func timeoutError(for request: SubscribeRequest) -> RedisError {
        if context == nil, let lastError { return .unavailable(lastError: RedisPipelineDriver.reason(lastError)) }
        return .timeout(operation: request.operation, after: request.timeout)
    }

    /// A subscribe call past its deadline fails and its subscription is dropped.
    private func expireDeadlines() {
        let now = ContinuousClock.now
        var earliest = ContinuousClock.Instant.distantFuture
        for request in Array(open.values) where !request.finished {
            guard request.deadline <= now else {
                earliest = min(earliest, request.deadline)
                continue
            }
            request.finished = true
            completions.append((request.continuation, .failure(timeoutError(for: request))))
            unsubscribe(request.id)
        }
        nextDeadline = earliest
    }

    private func finishPass() {
        guard !completions.isEmpty else { return }
        for (continuation, result) in completions { continuation.resume(returning: result) }
        completions.removeAll(keepingCapacity: true)
    }
}

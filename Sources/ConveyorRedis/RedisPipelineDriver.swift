import ConveyorIO
import DequeModule
import Logging

/// Drives one pipelined Redis connection on its ``ConnectionRunner`` thread.
///
/// Callers' commands arrive through ``inbox``; each pass appends all of them to hiredis's output buffer, writes
/// as much as the socket takes, reads whatever replies have arrived and matches them in order against
/// ``pending``. Callers are resumed after the read pass, so one burst of replies costs one pass.
///
/// - Important: everything except `inbox`, `wakeup` and `counters` is touched only on the runner's thread.
// Safe: the mutable state is confined to the runner's thread (see above); `inbox`, `wakeup` and `counters`
// synchronise themselves.
final class RedisPipelineDriver: ConnectionDriver, @unchecked Sendable {
    let wakeup: Wakeup
    let inbox: Inbox<RedisRequest>
    let counters: LockedValue<RedisConnectionCounters>
    private let url: RedisURL
    private let policy: ReconnectPolicy
    private let logger: Logger

    private var context: RedisContext?
    private var pending: Deque<PendingReply> = []
    /// Requests taken from the inbox while disconnected, sent after the reconnect unless their deadline passes.
    private var waiting: Deque<RedisRequest> = []
    private var completions: [Completion] = []
    /// Commands settled during this pass, subtracted from `counters.outstanding` once per pass.
    private var settled = 0
    /// No deadline in `pending` or `waiting` is earlier than this, so most passes skip the scan.
    private var nextDeadline = ContinuousClock.Instant.distantFuture

    init(configuration: RedisConfiguration, counters: LockedValue<RedisConnectionCounters>) {
        wakeup = Wakeup()
        inbox = Inbox(wakeup: wakeup)
        self.counters = counters
        url = configuration.url
        policy = configuration.policy
        logger = configuration.logger
        completions.reserveCapacity(1024)
    }

    func connect(timeout: Duration) throws {
        context = nil
        context = try RedisContext.connect(url: url, timeout: timeout, keepalive: policy.heartbeat)
    }

    func serve(maxWait: Duration) throws {
        guard let context else { throw RedisError.connectionLost("not connected") }
        var failure: RedisError?
        do {
            try submitQueued(to: context)
            if context.pendingOutput > 0 { try context.flush() }
        } catch {
            failure = error
        }
        if failure == nil {
            let socket = context.waitForSocket(
                wakeup: wakeup, maxWait: maxWait, nextDeadline: nextDeadline, settledThisPass: !completions.isEmpty)
            do {
                if socket.readable || socket.failed {
                    try context.read()
                    try takeReplies(from: context)
                }
                if socket.writable, context.pendingOutput > 0 { try context.flush() }
            } catch {
                failure = error
            }
        }
        if failure == nil, ContinuousClock.now >= nextDeadline { expireDeadlines(lastError: nil) }
        finishPass()
        if let failure { throw failure }
    }

    func connectionLost(_ error: any Error) {
        let reason = Self.reason(error)
        for slot in pending {
            switch slot.waiter {
            case .single(let continuation):
                completions.append(.single(continuation, .failure(.connectionLost(reason))))
            case .batch(let collector) where !collector.finished:
                collector.finished = true
                completions.append(.batch(collector.continuation, .failure(.connectionLost(reason))))
            case .batch, .discarded:
                break
            }
        }
        settled += pending.count
        pending.removeAll()
        context = nil
        finishPass()
    }

    func serveDisconnected(lastError: any Error) {
        let drained = inbox.drain()
        for request in drained { nextDeadline = min(nextDeadline, request.deadline) }
        waiting.append(contentsOf: drained)
        if ContinuousClock.now >= nextDeadline { expireDeadlines(lastError: lastError) }
        finishPass()
    }

    func shutdown() {
        for slot in pending {
            switch slot.waiter {
            case .single(let continuation): completions.append(.single(continuation, .failure(.closed)))
            case .batch(let collector) where !collector.finished:
                collector.finished = true
                completions.append(.batch(collector.continuation, .failure(.closed)))
            case .batch, .discarded: break
            }
        }
        settled += pending.count
        pending.removeAll()
        waiting.append(contentsOf: inbox.drain())
        for request in waiting {
            request.fail(.closed, into: &completions)
            settled += request.commandCount
        }
        waiting.removeAll()
        context = nil
        finishPass()
    }

    // MARK: - One pass

    /// Appends every queued request to the output buffer, oldest (those that waited for a reconnect) first.
    private func submitQueued(to context: RedisContext) throws(RedisError) {
        let now = ContinuousClock.now
        if !waiting.isEmpty {
            let queued = waiting
            waiting.removeAll()
            try submitAll(queued, to: context, now: now)
        }
        let drained = inbox.drain()
        if !drained.isEmpty { try submitAll(drained, to: context, now: now) }
    }

    private func submitAll(
        _ requests: Deque<RedisRequest>, to context: RedisContext, now: ContinuousClock.Instant
    )
        throws(RedisError)
    {
        var index = requests.startIndex
        while index < requests.endIndex {
            do {
                try submit(requests[index], to: context, now: now)
            } catch {
                // The connection is unusable: what was not appended waits for the reconnect, in order.
                waiting.append(contentsOf: requests[(index + 1)...])
                throw error
            }
            index += 1
        }
    }

    private func submit(
        _ request: RedisRequest, to context: RedisContext, now: ContinuousClock.Instant
    )
        throws(RedisError)
    {
        guard request.deadline > now else {
            request.fail(.timeout(operation: request.operation, after: request.timeout), into: &completions)
            settled += request.commandCount
            return
        }
        nextDeadline = min(nextDeadline, request.deadline)
        switch request.payload {
        case .single(let command, let continuation):
            // The slot goes in first: if the append fails, the caller hears `connectionLost` with the others.
            pending.append(
                PendingReply(
                    waiter: .single(continuation), deadline: request.deadline, timeout: request.timeout,
                    operation: command.name))
            try context.append(command)
        case .batch(let commands, let continuation):
            guard !commands.isEmpty else {
                completions.append(.batch(continuation, .success([])))
                return
            }
            let collector = BatchCollector(continuation: continuation, expected: commands.count)
            let operation = request.operation
            for command in commands {
                pending.append(
                    PendingReply(
                        waiter: .batch(collector), deadline: request.deadline, timeout: request.timeout,
                        operation: operation))
                try context.append(command)
            }
        }
    }

    /// Matches every complete reply read so far against the oldest pending slot.
    private func takeReplies(from context: RedisContext) throws(RedisError) {
        while let value = try context.nextReply() {
            guard let slot = pending.popFirst() else {
                throw .protocolError("Redis sent a reply no command was waiting for (\(value))")
            }
            settled += 1
            switch slot.waiter {
            case .single(let continuation):
                completions.append(.single(continuation, value.asResult))
            case .batch(let collector):
                guard !collector.finished else { continue }
                collector.results.append(value.asResult)
                if collector.results.count == collector.expected {
                    collector.finished = true
                    completions.append(.batch(collector.continuation, .success(collector.results)))
                }
            case .discarded:
                continue
            }
        }
    }

    /// Fails every request whose deadline has passed. A written command keeps its slot (marked discarded) so the
    /// replies behind it still match; a request that never left (disconnected) is dropped.
    private func expireDeadlines(lastError: (any Error)?) {
        let now = ContinuousClock.now
        var earliest = ContinuousClock.Instant.distantFuture
        for index in pending.indices {
            let slot = pending[index]
            guard slot.deadline <= now else {
                if case .discarded = slot.waiter {} else { earliest = min(earliest, slot.deadline) }
                continue
            }
            let error = RedisError.timeout(operation: slot.operation, after: slot.timeout)
            switch slot.waiter {
            case .single(let continuation):
                completions.append(.single(continuation, .failure(error)))
            case .batch(let collector) where !collector.finished:
                collector.finished = true
                completions.append(.batch(collector.continuation, .failure(error)))
            case .batch, .discarded:
                break
            }
            pending[index].waiter = .discarded
        }
        if !waiting.isEmpty {
            var kept: Deque<RedisRequest> = []
            for request in waiting {
                if request.deadline <= now {
                    let error: RedisError =
                        lastError.map { .unavailable(lastError: Self.reason($0)) }
                        ?? .timeout(operation: request.operation, after: request.timeout)
                    request.fail(error, into: &completions)
                    settled += request.commandCount
                } else {
                    earliest = min(earliest, request.deadline)
                    kept.append(request)
                }
            }
            waiting = kept
        }
        nextDeadline = earliest
    }

    /// Answers the callers settled during this pass, outside any lock.
    private func finishPass() {
        if settled > 0 {
            let count = settled
            counters.withLock { $0.outstanding -= count }
            settled = 0
        }
        guard !completions.isEmpty else { return }
        for completion in completions { completion.resume() }
        completions.removeAll(keepingCapacity: true)
    }

    static func reason(_ error: any Error) -> String {
        switch error {
        case RedisError.connectionLost(let reason): reason
        case let error as RedisError: error.description
        default: "\(error)"
        }
    }
}

extension ContinuousClock.Instant {
    static let distantFuture: ContinuousClock.Instant = .now + .seconds(100 * 365 * 24 * 3600)
}

import ConveyorIO
import DequeModule

// Continuations from ConveyorIO: checked in debug builds, unsafe in release (see IOContinuation.swift for why).
typealias ReplyContinuation = IOContinuation<Result<RESPValue, RedisError>, Never>
typealias BatchContinuation = IOContinuation<Result<[Result<RESPValue, RedisError>], RedisError>, Never>

/// Work a caller hands to a connection's thread: one command or one explicit batch, with its deadline.
struct RedisRequest: Sendable {
    enum Payload: Sendable {
        case single(RedisCommand, ReplyContinuation)
        case batch([RedisCommand], BatchContinuation)
    }

    var payload: Payload
    var deadline: ContinuousClock.Instant
    var timeout: Duration

    var commandCount: Int {
        switch payload {
        case .single: 1
        case .batch(let commands, _): commands.count
        }
    }

    var operation: String {
        switch payload {
        case .single(let command, _): command.name
        case .batch(let commands, _): "batch of \(commands.count) commands"
        }
    }

    /// Settles the request with `error` without sending it.
    func fail(_ error: RedisError, into completions: inout [Completion]) {
        switch payload {
        case .single(_, let continuation): completions.append(.single(continuation, .failure(error)))
        case .batch(_, let continuation): completions.append(.batch(continuation, .failure(error)))
        }
    }
}

/// The replies of one batch, gathered as they arrive.
///
/// - Important: owned by the connection's thread.
final class BatchCollector {
    let continuation: BatchContinuation
    let expected: Int
    var results: [Result<RESPValue, RedisError>] = []
    /// Set once the caller was answered (all replies, or a timeout); later replies are dropped.
    var finished = false

    init(continuation: BatchContinuation, expected: Int) {
        self.continuation = continuation
        self.expected = expected
        results.reserveCapacity(expected)
    }
}

/// One reply the connection is owed, in the order the commands were written.
///
/// A command whose caller gave up (deadline) keeps its slot as `.discarded`, so later replies still match.
struct PendingReply {
    enum Waiter {
        case single(ReplyContinuation)
        case batch(BatchCollector)
        case discarded
    }

    var waiter: Waiter
    let deadline: ContinuousClock.Instant
    let timeout: Duration
    let operation: String
}

/// A caller to answer once the thread has finished its read pass.
enum Completion {
    case single(ReplyContinuation, Result<RESPValue, RedisError>)
    case batch(BatchContinuation, Result<[Result<RESPValue, RedisError>], RedisError>)

    func resume() {
        switch self {
        case .single(let continuation, let result): continuation.resume(returning: result)
        case .batch(let continuation, let result): continuation.resume(returning: result)
        }
    }
}

/// What callers and the connection thread share: whether the connection is closed and how many commands are
/// still owed a reply.
struct RedisConnectionCounters: Sendable {
    var closed = false
    /// Commands handed over and not yet settled (answered, failed, or their slot cleared by a reply).
    var outstanding = 0
}

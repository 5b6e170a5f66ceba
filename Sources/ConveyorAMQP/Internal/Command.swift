import ConveyorIO

/// What callers ask the connection's thread to do, through its inbox.
enum Command: Sendable {
    case publish(PublishRequest)
    case topology(TopologyRequest)
    case consume(ConsumeRequest)
    case setPrefetch(consumerID: UInt64, prefetch: UInt16, continuation: CheckedContinuation<Void, any Error>)
    case cancel(consumerID: UInt64, continuation: CheckedContinuation<Void, Never>)
    case settle(consumerID: UInt64, incarnation: UInt64, tag: UInt64, kind: SettleKind)
    /// Resumes once no publish is waiting for a confirm (used by `close()`).
    case drain(CheckedContinuation<Void, Never>)
}

/// One `publish` or `publish(batch:)` call: its messages and the caller waiting for all their confirms.
// Safe: the caller sets `continuation` before pushing the request into the inbox (whose lock orders it); from then
// on only the connection's thread reads or writes any of this.
final class PublishRequest: @unchecked Sendable {
    let items: [AMQPOutgoing]
    let deadline: ContinuousClock.Instant
    let isBatch: Bool
    // Touched per message by the owner thread only: skip the runtime exclusivity checks.
    @exclusivity(unchecked) var continuation: IOContinuation<Void, any Error>?
    @exclusivity(unchecked) var remaining: Int
    /// Per item: settled (confirmed or failed) yet?
    @exclusivity(unchecked) var settled: [Bool]
    var failures: [AMQPBatchFailure] = []

    init(items: [AMQPOutgoing], deadline: ContinuousClock.Instant, isBatch: Bool) {
        self.items = items
        self.deadline = deadline
        self.isBatch = isBatch
        self.remaining = items.count
        self.settled = Array(repeating: false, count: items.count)
    }

    /// Still waiting for something (not completed or timed out).
    var isLive: Bool { continuation != nil }

    /// Records the outcome of item `index`; returns true when the request just completed.
    func settle(_ index: Int, error: AMQPError?) -> Bool {
        guard continuation != nil, !settled[index] else { return false }
        settled[index] = true
        if let error { failures.append(AMQPBatchFailure(index: index, error: error)) }
        remaining -= 1
        return remaining == 0
    }

    /// Fails every unsettled item with `error`; the request is complete afterwards.
    func failRemaining(_ error: AMQPError) {
        for index in settled.indices where !settled[index] {
            settled[index] = true
            failures.append(AMQPBatchFailure(index: index, error: error))
        }
        remaining = 0
    }

    /// Resumes the caller (once).
    func complete() {
        guard let continuation else { return }
        self.continuation = nil
        if failures.isEmpty {
            continuation.resume()
        } else if !isBatch, let only = failures.first {
            continuation.resume(throwing: only.error)
        } else {
            continuation.resume(throwing: AMQPError.batchFailed(failures.sorted { $0.index < $1.index }))
        }
    }
}

/// A topology operation (or passive declare) with its caller.
struct TopologyRequest: Sendable {
    enum Operation: Sendable {
        case declareExchange(AMQPExchange)
        case deleteExchange(name: String, ifUnused: Bool)
        case declareQueue(AMQPQueue)
        case queueInfo(String)
        case deleteQueue(name: String, ifUnused: Bool, ifEmpty: Bool)
        case purgeQueue(String)
        case bind(AMQPBinding)
        case unbind(AMQPBinding)
    }

    enum Result: Sendable {
        case done
        case queue(AMQPQueueInfo?)
        case count(Int)
    }

    let operation: Operation
    let deadline: ContinuousClock.Instant
    let continuation: CheckedContinuation<Result, any Error>
}

/// A new consumer to subscribe.
struct ConsumeRequest: Sendable {
    let queue: String
    let tag: String
    let prefetch: UInt16
    let arguments: AMQPTable
    let buffer: DeliveryBuffer
    let settler: Settler
    let deadline: ContinuousClock.Instant
    let continuation: CheckedContinuation<Void, any Error>
}

import ConveyorIO
import DequeModule

/// One call on its way to an actor's mailbox: what an `actor-calls` message carries per call.
struct OutgoingCall: Sendable {
    let callID: String
    let method: String
    let arguments: [JSONValue]
    let generics: [String]

    /// The body of a one-call `actor-call` message: the arguments' array, or `{args, generics}`.
    var singleBody: [UInt8] {
        if generics.isEmpty { return JSONValue.array(arguments).jsonBytes() }
        return JSONValue.object(["args": .array(arguments), "generics": .array(generics.map { .string($0) })])
            .jsonBytes()
    }

    /// This call as an element of an `actor-calls` body.
    var batchElement: JSONValue {
        var object: [String: JSONValue] = [
            "call": .string(callID), "method": .string(method), "args": .array(arguments),
        ]
        if !generics.isEmpty { object["generics"] = .array(generics.map { .string($0) }) }
        return .object(object)
    }
}

/// Coalesces one caller's concurrent calls to one actor into fewer mailbox messages (docs/PROTOCOL.md §10,
/// "Call batches").
///
/// Up to ``maxPublishing`` publishes to the mailbox may wait for the broker's confirm at once; calls made while
/// that many wait queue here, and when one is confirmed everything queued goes out as one `actor-calls` message. A
/// lone call is published at once as before, so a sequential caller pays nothing (two, not one, so that a caller
/// whose previous call was answered before its confirm arrived does not wait for that confirm); a caller with many
/// calls in flight pays one confirmed publish, one delivery and one ack per batch instead of per call, which is
/// what bounds a mailbox's rate.
///
/// No task of its own: the caller whose call finds nothing in flight publishes, and after its confirm hands the
/// queued calls to the first of their callers, which publishes them and hands on in turn.
///
/// - Important: every method may be called from any task; the queue is guarded by its `LockedValue`.
final class MailboxBatcher: Sendable {
    /// At most this many calls per message: bounds a message's size and how much a host redelivers at once.
    static let maxBatch = 500
    /// Publishes awaiting their confirm at once.
    static let maxPublishing = 2

    enum Turn: Sendable {
        /// The call went out with this result.
        case sent(Result<Void, any Error>)
        /// The caller publishes these calls (its own first), then hands on.
        case lead([Pending])
    }

    struct Pending: Sendable {
        let call: OutgoingCall
        let turn: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var publishing = 0
        var queued: Deque<Pending> = []
    }
    private let state = LockedValue(State())

    /// Calls waiting for a publish to hand them on (for tests).
    var queuedCount: Int { state.withLock { $0.queued.count } }

    /// Sends `call`, alone or with others, through `publish` (which publishes one call as an `actor-call`
    /// message, several as an `actor-calls` message), and returns once the message holding it was confirmed.
    ///
    /// - Throws: what `publish` threw for the message holding `call`.
    func send(
        _ call: OutgoingCall, publish: @Sendable ([OutgoingCall]) async throws -> Void
    ) async throws {
        let leads = state.withLock { state in
            if state.publishing >= Self.maxPublishing { return false }
            state.publishing += 1
            return true
        }
        if leads {
            do {
                try await publish([call])
                handOn()
            } catch {
                handOn()
                throw error
            }
            return
        }
        let turn = await withCheckedContinuation { continuation in
            // Queued under the lock that `handOn` takes, so the hand-on cannot miss it.
            let leadNow = state.withLock { state in
                if state.publishing >= Self.maxPublishing {
                    state.queued.append(Pending(call: call, turn: continuation))
                    return false
                }
                state.publishing += 1
                return true
            }
            if leadNow { continuation.resume(returning: .lead([Pending(call: call, turn: continuation)])) }
        }
        let batch: [Pending]
        switch turn {
        case .sent(let result): return try result.get()
        case .lead(let pending): batch = pending
        }
        let calls = batch.map(\.call)
        let result: Result<Void, any Error>
        do {
            try await publish(calls)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        // The first element is this caller's own call (its continuation was only used to hand it the lead).
        for other in batch.dropFirst() { other.turn.resume(returning: .sent(result)) }
        handOn()
        try result.get()
    }

    /// After a confirm: gives the queued calls (up to ``maxBatch``) to the first of their callers, who publishes
    /// them in this publish's place, or frees the place when none are queued.
    private func handOn() {
        let next: [Pending]? = state.withLock { state in
            guard !state.queued.isEmpty else {
                state.publishing -= 1
                return nil
            }
            let count = min(Self.maxBatch, state.queued.count)
            let taken = Array(state.queued.prefix(count))
            state.queued.removeFirst(count)
            return taken
        }
        if let next, let first = next.first { first.turn.resume(returning: .lead(next)) }
    }
}

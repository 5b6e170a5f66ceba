import ConveyorIO

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
/// that many wait queue, and when one is confirmed everything queued goes out as one `actor-calls` message (a
/// ``GroupCommit``). A lone call is published at once as before, so a sequential caller pays nothing (two
/// publishes, not one, so that a caller whose previous call was answered before its confirm arrived does not wait
/// for that confirm); a caller with many calls in flight pays one confirmed publish, one delivery and one ack per
/// batch instead of per call, which is what bounds a mailbox's rate.
///
/// - Important: every method may be called from any task.
final class MailboxBatcher: Sendable {
    /// At most this many calls per message: bounds a message's size and how much a host redelivers at once.
    static let maxBatch = 500
    /// Publishes awaiting their confirm at once.
    static let maxPublishing = 2

    private let commit = GroupCommit<OutgoingCall, Void>(maxBatch: maxBatch, maxInFlight: maxPublishing)

    /// Calls waiting for a publish to hand them on (for tests).
    var queuedCount: Int { commit.queuedCount }

    /// Sends `call`, alone or with others, through `publish` (which publishes one call as an `actor-call`
    /// message, several as an `actor-calls` message), and returns once the message holding it was confirmed.
    ///
    /// - Throws: what `publish` threw for the message holding `call`.
    func send(
        _ call: OutgoingCall, publish: @Sendable ([OutgoingCall]) async throws -> Void
    ) async throws {
        try await commit.submit(call, perform: publish)
    }
}

/// A handle on one submitted task's eventual result, like Ray's `ObjectRef`.
///
/// Cheap to copy and `Sendable`; any number of tasks may wait on the same ref.
public struct ObjectRef<Output: Codable & Sendable>: Sendable, Hashable, CustomStringConvertible {
    /// The task id.
    public let id: String
    let client: ConveyorClient
    /// Submitted by `client`, so its finish is announced on the client's notification channel.
    let submittedHere: Bool

    init(id: String, client: ConveyorClient, submittedHere: Bool) {
        self.id = id
        self.client = client
        self.submittedHere = submittedHere
    }

    /// Waits for the task to finish and returns its output.
    ///
    /// Push-based: the client's single pub/sub subscription wakes the wait; nothing is polled.
    ///
    /// - Throws: ``TaskError`` (the task's error type and message) for FAILURE, ``ConveyorError/revoked(id:reason:)``
    ///   for REVOKED, ``ConveyorError/timeout(id:after:)`` when not finished within `timeout`,
    ///   ``ConveyorError/resultDecoding(id:reason:)`` when the result is not an `Output`, ``ConveyorError/closed``,
    ///   or the ``RedisError`` of a read.
    public func get(timeout: Duration) async throws -> Output {
        let meta = try await client.awaitReady(id, submittedHere: submittedHere, timeout: timeout)
        return try Self.output(of: meta, id: id)
    }

    /// The task's current state and details.
    ///
    /// - Throws: ``RedisError``, ``TaskStoreError``.
    public func status() async throws -> TaskStatus {
        try await client.status(id)
    }

    /// The output a ready meta stands for, or the error it records.
    static func output(of meta: CeleryResultMeta, id: String) throws -> Output {
        switch meta.state {
        case .success?:
            do {
                return try meta.result.decode(as: Output.self)
            } catch {
                throw ConveyorError.resultDecoding(id: id, reason: String(describing: error))
            }
        case .revoked?:
            throw ConveyorError.revoked(id: id, reason: meta.failure?.message ?? "revoked")
        default:
            let failure = meta.failure ?? TaskFailure(type: "UnknownError", message: "\(meta.result)")
            throw TaskError(id: id, type: failure.type, message: failure.message)
        }
    }

    public static func == (lhs: ObjectRef, rhs: ObjectRef) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
    public var description: String { "ObjectRef(\(id))" }
}

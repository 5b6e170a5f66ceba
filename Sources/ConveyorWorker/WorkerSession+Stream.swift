import Conveyor

extension WorkerSession {
    /// Records a run's outcome: a generator's with its stream's end marker, in the same script.
    func recordFinish(_ envelope: TaskEnvelope, token: Int64, outcome: TaskOutcome) async throws -> RecordOutcome {
        if registry[envelope.task]?.kind == .stream {
            return try await store.finishStream(
                envelope.id, token: token, outcome: outcome, replyTo: envelope.replyTo,
                storeResult: !envelope.ignoreResult)
        }
        return try await store.finish(
            envelope.id, token: token, outcome: outcome, replyTo: envelope.replyTo, storeResult: !envelope.ignoreResult)
    }
}

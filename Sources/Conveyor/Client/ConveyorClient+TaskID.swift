import Foundation

extension ConveyorClient {
    /// Submits a task by name under an id the caller chose, and returns once the broker confirmed the message.
    ///
    /// For producers that may send the same logical task more than once (a periodic scheduler's tick, say): give
    /// every send of it the same id (``TaskID/derived(from:)``) and a worker runs it once, because its claim skips
    /// a task whose outcome is already recorded and leaves one that is running alone. Otherwise as
    /// ``submit(name:args:kwargs:options:)``, except that ``TaskOptions/idempotencyKey`` is not consulted: the id
    /// already names the task.
    ///
    /// - Throws: as ``submit(name:args:kwargs:options:)``.
    public func submit(
        name: String, id: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:],
        options: TaskOptions = TaskOptions()
    ) async throws -> ObjectRef<JSONValue> {
        var options = options
        options.fixETA(now: Date())
        let queue = queueName(options)
        try await ensureQueue(queue)
        try await checkBound(queue, options: options, adding: 1)
        let (id, outgoing) = try outgoing(
            name: name, args: args, kwargs: kwargs, options: options, queue: queue, id: id)
        try await deliver(outgoing, options: options)
        return ObjectRef(id: id, client: self, submittedHere: true)
    }
}

import Conveyor

extension TaskRegistry {
    /// Registers the implementation of generator `definition`. Registering a name again replaces it.
    ///
    /// ```swift
    /// registry.registerStream(Count.self) { input, stream in
    ///     for i in 0..<input.n { try await stream.yield(i) }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - options: retries and time limits, as for tasks. A retried generator runs again from its start; the items
    ///     the earlier run stored are skipped, so it must yield the same items in the same order (as after a worker
    ///     crash).
    ///   - body: the generator. It yields through ``StreamContext/yield(_:)``; when it returns, readers see the end,
    ///     and what it throws reaches them after the items yielded before. Cancellation (revocation, a consumer that
    ///     stopped reading, time limits, shutdown) arrives as task cancellation and as a `CancellationError` from
    ///     `yield`.
    public mutating func registerStream<Definition: StreamDefinition>(
        _ definition: Definition.Type, options: TaskRunOptions = TaskRunOptions(),
        _ body: @escaping @Sendable (Definition.Input, StreamContext<Definition.Element>) async throws -> Void
    ) {
        var task = RegisteredTask(
            name: Definition.name, options: options, argumentNames: Definition.argumentNames
        ) { envelope in
            let input = try Definition.decodeInput(from: envelope)
            let bound = StreamProducer.bound(of: envelope)
            return { context in
                let producer = StreamProducer(context: context, bound: bound)
                let count = try await producer.run {
                    try await body(input, StreamContext(task: context, producer: producer))
                }
                return JSONValue.int(Int64(count)).jsonBytes()
            }
        }
        task.kind = .stream
        tasks[Definition.name] = task
    }

    /// Registers a generator by name that takes the raw JSON arguments and yields JSON values.
    public mutating func registerStream(
        name: String, options: TaskRunOptions = TaskRunOptions(),
        _ body:
            @escaping @Sendable (
                _ args: [JSONValue], _ kwargs: [String: JSONValue], StreamContext<JSONValue>
            ) async throws -> Void
    ) {
        var task = RegisteredTask(name: name, options: options, argumentNames: []) { envelope in
            let bound = StreamProducer.bound(of: envelope)
            return { context in
                let producer = StreamProducer(context: context, bound: bound)
                let count = try await producer.run {
                    try await body(envelope.args, envelope.kwargs, StreamContext(task: context, producer: producer))
                }
                return JSONValue.int(Int64(count)).jsonBytes()
            }
        }
        task.kind = .stream
        tasks[name] = task
    }
}

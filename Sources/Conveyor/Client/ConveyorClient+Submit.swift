import ConveyorAMQP
import Foundation

extension ConveyorClient {
    /// Submits one task and returns once the broker confirmed the message.
    ///
    /// The input travels as the kwargs object. Before the first message to a queue, the queue is looked up and,
    /// if missing, declared (``TaskQueueTopology``).
    ///
    /// - Parameter options: ``TaskDefinition/defaultOptions`` when `nil`.
    /// - Throws: ``TaskInputError`` when the input does not encode as an object, ``ConveyorError/queueMismatch(queue:serverText:)``,
    ///   or the ``AMQPError`` of the publish (``AMQPError/returned(replyCode:replyText:)`` if the queue vanished:
    ///   messages are mandatory, never silently dropped).
    public func submit<Definition: TaskDefinition>(
        _ definition: Definition.Type, _ input: Definition.Input, options: TaskOptions? = nil
    ) async throws -> ObjectRef<Definition.Output> {
        let kwargs = try Definition.encodeInput(input)
        let id = try await publish(
            name: Definition.name, args: [], kwargs: kwargs, options: options ?? Definition.defaultOptions)
        return ObjectRef(id: id, client: self, submittedHere: true)
    }

    /// Submits many tasks of one definition in one batch (one write, merged confirms); returns once the broker
    /// confirmed them all, with the refs in the order of `inputs`.
    ///
    /// - Throws: as ``submit(_:_:options:)``; ``AMQPError/batchFailed(_:)`` lists the messages that failed (the
    ///   others were confirmed).
    public func submitMany<Definition: TaskDefinition>(
        _ definition: Definition.Type, _ inputs: [Definition.Input], options: TaskOptions? = nil
    ) async throws -> [ObjectRef<Definition.Output>] {
        let options = options ?? Definition.defaultOptions
        let queue = queueName(options)
        var batch: [AMQPOutgoing] = []
        var refs: [ObjectRef<Definition.Output>] = []
        batch.reserveCapacity(inputs.count)
        refs.reserveCapacity(inputs.count)
        for input in inputs {
            let (id, outgoing) = try outgoing(
                name: Definition.name, args: [], kwargs: try Definition.encodeInput(input), options: options,
                queue: queue)
            batch.append(outgoing)
            refs.append(ObjectRef(id: id, client: self, submittedHere: true))
        }
        guard !batch.isEmpty else { return [] }
        try await ensureQueue(queue)
        try await broker.publish(batch: batch)
        return refs
    }

    /// Submits a task by name with raw JSON arguments, as Celery's `send_task` does.
    ///
    /// - Throws: as ``submit(_:_:options:)``.
    public func submit(
        name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], options: TaskOptions = TaskOptions()
    ) async throws -> ObjectRef<JSONValue> {
        let id = try await publish(name: name, args: args, kwargs: kwargs, options: options)
        return ObjectRef(id: id, client: self, submittedHere: true)
    }

    /// Publishes one task message (mandatory, confirmed) and returns its id.
    func publish(
        name: String, args: [JSONValue], kwargs: [String: JSONValue], options: TaskOptions,
        id: String = TaskID.make()
    ) async throws -> String {
        let queue = queueName(options)
        let (id, outgoing) = try outgoing(
            name: name, args: args, kwargs: kwargs, options: options, queue: queue, id: id)
        try await ensureQueue(queue)
        try await broker.publish(
            outgoing.message, exchange: outgoing.exchange, routingKey: outgoing.routingKey, mandatory: true)
        logger.trace("submitted", metadata: ["task": .string(name), "id": .string(id), "queue": .string(queue)])
        return id
    }

    func queueName(_ options: TaskOptions) -> String {
        options.queue.isEmpty ? configuration.defaultQueue : options.queue
    }

    /// The envelope of a new task, as an AMQP message on the default exchange routed to `queue`.
    func outgoing(
        name: String, args: [JSONValue], kwargs: [String: JSONValue], options: TaskOptions, queue: String,
        id: String = TaskID.make()
    ) throws -> (id: String, message: AMQPOutgoing) {
        var envelope = TaskEnvelope(
            id: id, task: name, args: args, kwargs: kwargs, eta: options.resolvedETA(), expires: options.expires,
            timeLimit: options.timeLimit, origin: origin, ignoreResult: options.ignoreResult, lang: "swift",
            replyTo: clientID, priority: options.priority,
            conveyor: [ConveyorHeader.sentMs.rawValue: .int(MillisecondClock.now())])
        envelope.idempotencyKey = options.idempotencyKey
        let properties = AMQPProperties(
            contentType: "application/json", contentEncoding: "utf-8",
            headers: AMQPTable(json: envelope.celeryHeaders), deliveryMode: .persistent, priority: options.priority,
            correlationId: envelope.id, replyTo: clientID)
        let message = AMQPMessage(body: Array(try envelope.celeryBody()), properties: properties)
        return (envelope.id, AMQPOutgoing(message, exchange: "", routingKey: queue, mandatory: true))
    }

    /// Makes sure `queue` exists, once per client (``TaskQueueTopology/ensure(_:on:)``).
    func ensureQueue(_ queue: String) async throws {
        if readyQueues.withLock({ $0.contains(queue) }) { return }
        // Two first submits to the same queue may both check it: harmless, the check is idempotent.
        try await configuration.topology.ensure(queue, on: broker)
        readyQueues.withLock { _ = $0.insert(queue) }
    }
}

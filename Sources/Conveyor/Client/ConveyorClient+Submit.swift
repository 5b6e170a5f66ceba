import ConveyorAMQP
import Foundation

extension ConveyorClient {
    /// Submits one task and returns once the broker confirmed the message (or, for a task not due yet, once it is
    /// in the Redis delay set).
    ///
    /// The input travels as the kwargs object. Before the first message to a queue, the queue is looked up and,
    /// if missing, declared (``TaskQueueTopology``). The admission rules of `options` apply
    /// (``TaskOptions/idempotencyKey``, ``TaskOptions/maxQueued``, ``TaskOptions/countdown``/``TaskOptions/eta``).
    ///
    /// - Parameter options: ``TaskDefinition/defaultOptions`` when `nil`.
    /// - Throws: ``TaskInputError`` when the input does not encode as an object, ``ConveyorError/queueMismatch(queue:serverText:)``,
    ///   ``ConveyorError/queueFull(queue:bound:depth:)``, ``ConveyorError/payloadTooLarge(size:limit:)`` (over
    ///   ``ConveyorConfiguration/maxPayloadBytes``), the ``RedisError`` of an admission script,
    ///   or the ``AMQPError`` of the publish (``AMQPError/returned(replyCode:replyText:)`` if the queue vanished:
    ///   messages are mandatory, never silently dropped).
    public func submit<Definition: TaskDefinition>(
        _ definition: Definition.Type, _ input: Definition.Input, options: TaskOptions? = nil
    ) async throws -> ObjectRef<Definition.Output> {
        let kwargs = try Definition.encodeInput(input)
        let (id, here) = try await admit(
            name: Definition.name, args: [], kwargs: kwargs, options: options ?? Definition.defaultOptions)
        return ObjectRef(id: id, client: self, submittedHere: here)
    }

    /// Submits many tasks of one definition in one batch (one write, merged confirms); returns once the broker
    /// confirmed them all, with the refs in the order of `inputs`.
    ///
    /// ``TaskOptions/maxQueued`` counts the whole batch (all or nothing); tasks not due yet go to the delay set.
    ///
    /// - Throws: as ``submit(_:_:options:)``; ``AMQPError/batchFailed(_:)`` lists the messages that failed (the
    ///   others were confirmed); ``ConveyorError/invalidConfiguration(_:)`` for an
    ///   ``TaskOptions/idempotencyKey``, which names one task, not a batch (give each task its own key with
    ///   ``submitMany(_:_:idempotencyKeys:options:)``).
    public func submitMany<Definition: TaskDefinition>(
        _ definition: Definition.Type, _ inputs: [Definition.Input], options: TaskOptions? = nil
    ) async throws -> [ObjectRef<Definition.Output>] {
        var options = options ?? Definition.defaultOptions
        if let key = options.idempotencyKey, !key.isEmpty {
            throw ConveyorError.invalidConfiguration(
                "an idempotency key names one task; give one per task with submitMany(_:_:idempotencyKeys:options:)")
        }
        options.fixETA(now: Date())
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
        try await checkBound(queue, options: options, adding: batch.count)
        if let dueMs = options.delayedDueMs() {
            try await schedule(batch, dueMs: dueMs)
            return refs
        }
        try await publishTasks(batch, batch: true)
        return refs
    }

    /// Submits a task by name with raw JSON arguments, as Celery's `send_task` does.
    ///
    /// - Throws: as ``submit(_:_:options:)``.
    public func submit(
        name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], options: TaskOptions = TaskOptions()
    ) async throws -> ObjectRef<JSONValue> {
        let (id, here) = try await admit(name: name, args: args, kwargs: kwargs, options: options)
        return ObjectRef(id: id, client: self, submittedHere: here)
    }

    /// Submits one task under the admission rules of `options` and returns its id
    /// (``admit(name:args:kwargs:options:)``).
    func publish(
        name: String, args: [JSONValue], kwargs: [String: JSONValue], options: TaskOptions
    ) async throws -> String {
        try await admit(name: name, args: args, kwargs: kwargs, options: options).id
    }

    /// Publishes one task message (mandatory, confirmed; republished if nacked: ``publishTasks(_:batch:)``).
    func publish(_ outgoing: AMQPOutgoing) async throws {
        var outgoing = outgoing
        outgoing.mandatory = true
        try await publishTasks([outgoing], batch: false)
    }

    func queueName(_ options: TaskOptions) -> String {
        options.queue.isEmpty ? configuration.defaultQueue : options.queue
    }

    /// The envelope of a new task, as an AMQP message on the default exchange routed to `queue`.
    ///
    /// - Throws: ``ConveyorError/payloadTooLarge(size:limit:)`` over ``ConveyorConfiguration/maxPayloadBytes``, or
    ///   the envelope's encoding error. Every submit path builds its messages here before it publishes anything.
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
        let body = Array(try envelope.celeryBody())
        guard body.count <= configuration.maxPayloadBytes else {
            throw ConveyorError.payloadTooLarge(size: body.count, limit: configuration.maxPayloadBytes)
        }
        let message = AMQPMessage(body: body, properties: properties)
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

import ConveyorAMQP
import Foundation

/// Keyed batches: many tasks, each with its own idempotency key, admitted with a fixed number of round trips
/// (docs/PROTOCOL.md, "Admission", "Batches of keys").
extension ConveyorClient {
    /// Submits many tasks of one definition, each under its own idempotency key, in one batch; returns once every
    /// task exists, with the refs in the order of `inputs`.
    ///
    /// Each key behaves as ``TaskOptions/idempotencyKey`` does for ``submit(_:_:options:)``: a key that already
    /// names a task returns that task's ref and publishes nothing, and concurrent batches from any number of
    /// producers give one task per key, run once. The cost is three round trips for the whole batch (the keys
    /// reserved by one script call per 500 keys, one confirmed publish, the keys confirmed likewise), not three
    /// per task. Keys another
    /// producer is publishing at that moment wait for it, one by one, as ``submit(_:_:options:)`` does.
    ///
    /// A key given twice names one task: both positions get the same ref, and the later input is not used.
    /// ``TaskOptions/maxQueued`` counts the tasks to publish (keys that already name a task do not count), all
    /// or nothing; tasks not due yet go to the delay set.
    ///
    /// - Parameters:
    ///   - inputs: the tasks' inputs.
    ///   - idempotencyKeys: one non-empty key per input, in the same order.
    ///   - options: ``TaskDefinition/defaultOptions`` when `nil`; its own ``TaskOptions/idempotencyKey`` must be
    ///     unset.
    /// - Throws: ``ConveyorError/invalidConfiguration(_:)`` when the keys do not match the inputs one to one, a
    ///   key is empty, or `options` carries an idempotency key; otherwise as ``submitMany(_:_:options:)``. When
    ///   the publish fails, the keys of tasks that were confirmed are confirmed before the error is thrown, keys of
    ///   returned messages are released, and the others stay reserved until their pending time
    ///   (``ConveyorConfiguration/idempotencyPendingTTL``) passes and a later submit takes them over.
    public func submitMany<Definition: TaskDefinition>(
        _ definition: Definition.Type, _ inputs: [Definition.Input], idempotencyKeys: [String],
        options: TaskOptions? = nil
    ) async throws -> [ObjectRef<Definition.Output>] {
        let options = options ?? Definition.defaultOptions
        guard inputs.count == idempotencyKeys.count else {
            throw ConveyorError.invalidConfiguration(
                "submitMany got \(inputs.count) inputs but \(idempotencyKeys.count) idempotency keys")
        }
        if let key = options.idempotencyKey, !key.isEmpty {
            throw ConveyorError.invalidConfiguration(
                "submitMany(idempotencyKeys:) takes the keys per task, not in the options")
        }
        guard !idempotencyKeys.contains(where: \.isEmpty) else {
            throw ConveyorError.invalidConfiguration("an idempotency key is empty")
        }
        guard !inputs.isEmpty else { return [] }
        let kwargs = try inputs.map { try Definition.encodeInput($0) }
        let admitted = try await admitMany(
            name: Definition.name, kwargs: kwargs, keys: idempotencyKeys, options: options)
        return admitted.map { ObjectRef(id: $0.id, client: self, submittedHere: $0.submittedHere) }
    }

    /// Admits one task per distinct key of `keys` (docs/PROTOCOL.md §7): reserve every key (one round trip),
    /// check the bound, publish the reserved ones as one confirmed batch (or schedule them), confirm their keys
    /// (one round trip); keys pending at another producer go through ``admit(name:args:kwargs:options:)`` one by one.
    ///
    /// - Returns: for each position of `keys`, the task id and whether this client published it.
    func admitMany(
        name: String, kwargs: [[String: JSONValue]], keys: [String], options: TaskOptions
    ) async throws -> [(id: String, submittedHere: Bool)] {
        var options = options
        options.fixETA(now: Date())
        let queue = queueName(options)
        try await ensureQueue(queue)

        // One reservation per distinct key; `first[key]` is the position whose input the key's task runs.
        var first: [String: Int] = [:]
        var distinct: [(key: String, candidate: String)] = []
        for (position, key) in keys.enumerated() where first[key] == nil {
            first[key] = position
            distinct.append((key, TaskID.make()))
        }
        let reservations = try await store.reserveIdempotencyKeys(
            distinct, pending: configuration.idempotencyPendingTTL, ttl: configuration.idempotencyTTL)

        var outcome: [String: (id: String, submittedHere: Bool)] = [:]
        var reserved: [(key: String, id: String, candidate: String)] = []
        var pending: [String] = []
        for (request, reservation) in zip(distinct, reservations) {
            switch reservation {
            case .confirmed(let id): outcome[request.key] = (id, false)
            case .reserved(let id): reserved.append((request.key, id, request.candidate))
            case .pending: pending.append(request.key)
            }
        }

        if !reserved.isEmpty {
            try await publishReserved(
                reserved, name: name, kwargs: kwargs, first: first, options: options, queue: queue)
            for task in reserved {
                // A reservation taken over from a producer that did not confirm: that producer may have published
                // the id too, with its own reply-to, so waits follow the task's result channel instead.
                outcome[task.key] = (task.id, task.id == task.candidate)
            }
        }

        // Another producer is publishing these: wait for it (or take over its lapsed reservation) as one submit
        // does. Rare, so one admit each, concurrently.
        if !pending.isEmpty {
            try await withThrowingTaskGroup(of: (String, (id: String, submittedHere: Bool)).self) { group in
                for key in pending {
                    guard let position = first[key] else { continue }
                    var single = options
                    single.idempotencyKey = key
                    let arguments = kwargs[position]
                    group.addTask {
                        (key, try await self.admit(name: name, args: [], kwargs: arguments, options: single))
                    }
                }
                for try await (key, admitted) in group { outcome[key] = admitted }
            }
        }
        return try keys.map { key in
            guard let admitted = outcome[key] else {
                throw ConveyorError.invalidConfiguration("idempotency key \(key) was not admitted")
            }
            return admitted
        }
    }

    /// Publishes (or schedules) the tasks of `reserved` keys as one batch and confirms their keys, under the
    /// failure rules of ``admit(name:args:kwargs:options:)``: reservations are released only when nothing can have
    /// been published.
    private func publishReserved(
        _ reserved: [(key: String, id: String, candidate: String)], name: String, kwargs: [[String: JSONValue]],
        first: [String: Int], options: TaskOptions, queue: String
    ) async throws {
        let store = self.store
        let all = reserved.map { (key: $0.key, id: $0.id) }
        var batch: [AMQPOutgoing] = []
        batch.reserveCapacity(reserved.count)
        do {
            try await checkBound(queue, options: options, adding: reserved.count)
            var single = options
            for task in reserved {
                guard let position = first[task.key] else {
                    throw ConveyorError.invalidConfiguration("idempotency key \(task.key) has no input")
                }
                single.idempotencyKey = task.key
                batch.append(
                    try outgoing(
                        name: name, args: [], kwargs: kwargs[position], options: single, queue: queue, id: task.id
                    ).message)
            }
        } catch {
            _ = try? await store.releaseIdempotencyKeys(all)
            throw error
        }

        do {
            if let dueMs = options.delayedDueMs() {
                try await schedule(batch, dueMs: dueMs)
            } else {
                try await publishTasks(batch, batch: true)
            }
        } catch AMQPError.batchFailed(let failures) {
            // The messages not listed were confirmed: their keys name them now. Returned ones were dropped by the
            // broker (nothing published): their keys are free again. The rest (nacked, timed out) may be queued,
            // so their reservations stay pending for a later submit to take over with the same id.
            var failed = Set<Int>()
            var returned: [(key: String, id: String)] = []
            for failure in failures {
                failed.insert(failure.index)
                if case .returned = failure.error, failure.index < all.count { returned.append(all[failure.index]) }
            }
            let confirmed = all.indices.filter { !failed.contains($0) }.map { all[$0] }
            _ = try? await store.releaseIdempotencyKeys(returned)
            try await confirm(confirmed)
            throw AMQPError.batchFailed(failures)
        }
        try await confirm(all)
        logger.trace(
            "submitted a keyed batch",
            metadata: ["task": .string(name), "count": .stringConvertible(all.count), "queue": .string(queue)])
    }

    /// Confirms published tasks' keys (one round trip).
    private func confirm(_ published: [(key: String, id: String)]) async throws {
        try await store.confirmIdempotencyKeys(published, ttl: configuration.idempotencyTTL)
    }
}

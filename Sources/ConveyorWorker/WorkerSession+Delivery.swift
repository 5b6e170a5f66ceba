import Conveyor
import ConveyorAMQP
import ConveyorRedis
import Foundation
import Logging

extension WorkerSession {
    /// One delivery, start to settlement (DESIGN §5): check, claim, run, record, ack. Never throws: whatever goes
    /// wrong ends in a recorded state, a dead letter, or a requeue.
    func handle(_ delivery: AMQPDelivery, queue: String) async {
        metrics.received(queue: queue)
        guard isTakingWork else {
            _ = delivery.nack(requeue: true)
            return
        }
        let headers = delivery.properties.headers.jsonFields
        let headerID = headers["id"]?.stringValue ?? delivery.properties.correlationId
        let replyTo = delivery.properties.replyTo

        let envelope: TaskEnvelope
        do {
            envelope = try TaskEnvelope(
                celeryHeaders: headers, body: delivery.body, contentType: delivery.properties.contentType,
                contentEncoding: delivery.properties.contentEncoding, replyTo: replyTo,
                priority: delivery.properties.priority, maxBodySize: configuration.maxPayloadBytes)
        } catch {
            let tooLarge: Bool = if case .payloadTooLarge = error { true } else { false }
            await deadLetter(
                delivery, queue: queue, reason: tooLarge ? .payloadTooLarge : .malformed, detail: error.description,
                id: headerID, name: headers["task"]?.stringValue, replyTo: replyTo)
            return
        }

        // A future eta (Celery's countdown, a retry) waits in the Redis delay set, not in this worker's memory.
        if let eta = envelope.eta {
            let dueMs = MillisecondClock.milliseconds(eta)
            if dueMs > MillisecondClock.now() + 20 {
                await schedule(delivery, envelope: envelope, queue: queue, dueMs: dueMs)
                return
            }
        }

        guard let task = registry[envelope.task] else {
            await deadLetter(
                delivery, queue: queue, reason: .unknownTask,
                detail: "task '\(envelope.task)' is not registered on worker \(configuration.workerID) "
                    + "(registered: \(registry.names.joined(separator: ", ")))",
                id: envelope.id, name: envelope.task, replyTo: replyTo)
            return
        }
        let run: RegisteredTask.Run
        do {
            run = try task.prepare(envelope)
        } catch {
            await deadLetter(
                delivery, queue: queue, reason: .invalidInput, detail: String(describing: error), id: envelope.id,
                name: envelope.task, replyTo: replyTo)
            return
        }
        await claimAndRun(delivery, envelope: envelope, task: task, run: run, queue: queue)
    }

    /// Claims the task and runs it, waiting out another worker's live lease first.
    private func claimAndRun(
        _ delivery: AMQPDelivery, envelope: TaskEnvelope, task: RegisteredTask, run: @escaping RegisteredTask.Run,
        queue: String
    ) async {
        let expiresMs = envelope.expires.map(MillisecondClock.milliseconds)
        let limits = task.claimLimits(for: envelope)
        while true {
            let outcome: ClaimOutcome
            do {
                outcome = try await persistently("claim") {
                    try await store.claim(
                        envelope.id, worker: configuration.workerID, name: envelope.task, queue: queue,
                        lease: configuration.lease, expiresMs: expiresMs, maxAttempts: configuration.maxDeliveries,
                        replyTo: envelope.replyTo, limits: limits)
                }
            } catch {
                _ = delivery.nack(requeue: true)
                return
            }
            switch outcome {
            case .run(let token, let attempt):
                guard let maxRunning = limits?.maxRunning else {
                    await execute(
                        delivery, envelope: envelope, task: task, run: run, queue: queue, token: token,
                        attempt: attempt)
                    return
                }
                let pool = task.options.pool ?? envelope.task
                heldSlots.insert(envelope.id, pool: pool)
                await execute(
                    delivery, envelope: envelope, task: task, run: run, queue: queue, token: token, attempt: attempt)
                await releaseSlot(envelope.id, token: token, pool: pool, maxRunning: maxRunning)
                return
            case .throttled(let untilMs):
                // The rate limit gave it a later slot: wait for it in the delay set, not in this execution slot.
                await park(delivery, envelope: envelope, queue: queue, dueMs: untilMs, cap: nil)
                return
            case .capped(let firstExpiryMs):
                let cap = (pool: task.options.pool ?? envelope.task, maxRunning: limits?.maxRunning ?? 1)
                await park(
                    delivery, envelope: envelope, queue: queue, dueMs: cappedRetryMs(firstExpiryMs: firstExpiryMs),
                    cap: cap)
                return
            case .alreadyFinished, .revoked, .expired:
                // A redelivery of a finished task, or one that must not run: the claim recorded what applies.
                metrics.skipped(envelope.task)
                logger.debug(
                    "skipped", metadata: ["task.id": .string(envelope.id), "claim": .string("\(outcome)")])
                _ = delivery.ack()
                return
            case .poison(let attempts):
                await deadLetter(
                    delivery, queue: queue, reason: .deliveryLimit,
                    detail: "claimed \(attempts) times without an outcome (limit \(configuration.maxDeliveries))",
                    id: nil, name: envelope.task, replyTo: nil)
                return
            case .leasedElsewhere(let owner, let untilMs):
                // Another run holds a live lease: a duplicate delivery while it runs, or a crashed worker's lease
                // that has not expired yet. Hold the message and look again when the lease would end.
                let wait = max(50, min(untilMs - MillisecondClock.now() + 10, 5_000))
                logger.debug(
                    "leased elsewhere; waiting",
                    metadata: ["task.id": .string(envelope.id), "owner": .string(owner), "wait_ms": "\(wait)"])
                do {
                    try await sleepUnlessStopping(.milliseconds(wait))
                } catch {
                    _ = delivery.nack(requeue: true)
                    return
                }
            }
        }
    }

    /// Sleeps `duration`, throwing `CancellationError` early once the worker stops taking work.
    func sleepUnlessStopping(_ duration: Duration) async throws {
        let step = Duration.milliseconds(100)
        var left = duration
        while left > .zero {
            guard isTakingWork else { throw CancellationError() }
            let now = min(step, left)
            try await Task.sleep(for: now)
            left -= now
        }
        guard isTakingWork else { throw CancellationError() }
    }

    /// Runs a Redis operation until it succeeds: while Redis is down the message stays unacked and nothing is lost.
    /// Gives up (throwing) only when the worker is stopping.
    func persistently<T>(_ what: String, _ operation: () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await operation()
            } catch let error as RedisError {
                if isStopping { throw error }
                logger.warning(
                    "Redis call failed; retrying", metadata: ["call": .string(what), "error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Holds a message with a future eta in the delay set, then acks it.
    private func schedule(_ delivery: AMQPDelivery, envelope: TaskEnvelope, queue: String, dueMs: Int64) async {
        do {
            let message = try DelayedMessage(envelope: envelope, queue: queue)
            try await persistently("schedule") {
                try await store.schedule(envelope.id, dueMs: dueMs, message: message)
            }
            _ = delivery.ack()
        } catch {
            _ = delivery.nack(requeue: true)
        }
    }
}

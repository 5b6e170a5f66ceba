import Conveyor
import ConveyorAMQP
import Foundation
import Logging

extension WorkerSession {
    /// Runs a claimed task under its time limits, records the outcome, then acks.
    func execute(
        _ delivery: AMQPDelivery, envelope: TaskEnvelope, task: RegisteredTask, run body: @escaping RegisteredTask.Run,
        queue: String, token: Int64, attempt: Int
    ) async {
        let context = TaskContext(
            id: envelope.id, name: envelope.task, queue: queue, retries: envelope.retries, attempt: attempt,
            envelope: envelope, redis: redis, workerLogger: logger, store: store, token: token)
        metrics.started(envelope.task)
        if let sent = envelope.conveyor[ConveyorHeader.sentMs.rawValue]?.intValue {
            metrics.queued(envelope.task, milliseconds: MillisecondClock.now() - sent)
        }
        let soft = envelope.timeLimit.soft ?? task.options.timeLimit.soft
        let hard = envelope.timeLimit.hard ?? task.options.timeLimit.hard

        let started = ContinuousClock.now
        let end = await run(body, id: envelope.id, context: context, soft: soft, hard: hard)
        let elapsed = ContinuousClock.now - started
        metrics.ran(envelope.task, nanoseconds: Int64(elapsed.secondsValue * 1e9))

        switch end {
        case .returned(let json):
            await record(delivery, envelope, token: token, .success(json: json), context: context)
            metrics.succeeded(envelope.task)
        case .hardTimeLimit(let seconds):
            let failure = TaskFailure(
                type: "TimeLimitExceeded", message: "hard time limit (\(Self.seconds(seconds))) exceeded")
            context.logger.warning("hard time limit exceeded; the task was abandoned")
            await record(delivery, envelope, token: token, .failure(failure), context: context)
            metrics.failed(envelope.task, reason: "hard-time-limit")
        case .abandoned:
            await giveBack(delivery, envelope, token: token, context: context)
        case .threw(let error, let reason):
            switch reason {
            case .softTimeLimit(let seconds)?:
                let failure = TaskFailure(
                    type: "SoftTimeLimitExceeded", message: "soft time limit (\(Self.seconds(seconds))) exceeded")
                await record(delivery, envelope, token: token, .failure(failure), context: context)
                metrics.failed(envelope.task, reason: "soft-time-limit")
            case .revoked(let why)?:
                await record(delivery, envelope, token: token, .revoked(reason: why), context: context)
            case .leaseLost?:
                // Another worker owns the task now (or it has an outcome): nothing of this run may be written.
                context.logger.warning("lease lost; the run's outcome is discarded")
                _ = delivery.ack()
            case .shutdown?:
                await giveBack(delivery, envelope, token: token, context: context)
            case nil:
                await failed(
                    delivery, envelope, task: task, queue: queue, token: token, error: error, context: context)
            }
        }
    }

    /// Runs the body in a Swift task of its own, so that a hard limit can free the slot even when the code
    /// ignores cancellation.
    private func run(
        _ body: @escaping RegisteredTask.Run, id: String, context: TaskContext, soft: Double?, hard: Double?
    ) async -> RunEnd {
        let running = RunningTask(id: id)
        self.running.insert(running)
        metrics.running.record(self.running.count)
        defer {
            self.running.remove(id)
            metrics.running.record(self.running.count)
        }
        let settlement = running.settlement
        // Unstructured on purpose: a run past its hard limit is abandoned, and a task group would wait for it.
        let work = Task {
            do {
                settlement.settle(.returned(try await body(context)))
            } catch {
                settlement.settle(.threw(error, running.cancelReason))
            }
        }
        running.attach(work)
        if isStopping { running.cancel(.shutdown) }
        let hasLimit = (soft ?? 0) > 0 || (hard ?? 0) > 0
        guard hasLimit else { return await settlement.value }
        return await withTaskGroup(of: Void.self) { timers in
            if let soft, soft > 0 {
                timers.addTask {
                    guard (try? await Task.sleep(for: .clampedSeconds(soft))) != nil else { return }
                    running.cancel(.softTimeLimit(seconds: soft))
                }
            }
            if let hard, hard > 0 {
                timers.addTask {
                    guard (try? await Task.sleep(for: .clampedSeconds(hard))) != nil else { return }
                    if settlement.settle(.hardTimeLimit(seconds: hard)) { work.cancel() }
                }
            }
            let end = await settlement.value
            timers.cancelAll()
            return end
        }
    }

    /// A thrown error: retried if the policy allows, recorded FAILURE otherwise.
    private func failed(
        _ delivery: AMQPDelivery, _ envelope: TaskEnvelope, task: RegisteredTask, queue: String, token: Int64,
        error: any Error, context: TaskContext
    ) async {
        let policy = task.options.retry
        let requested = error as? TaskRetry
        let retryable = requested != nil || policy.retryOnError
        if retryable, envelope.retries < policy.maxRetries {
            let delay = requested?.after ?? policy.delay(afterRetries: envelope.retries)
            let failure = requested.map { TaskFailure(type: "Retry", message: $0.reason) } ?? TaskFailure(error)
            await scheduleRetry(
                delivery, envelope, queue: queue, token: token, error: failure, delay: delay, context: context)
            return
        }
        let failure: TaskFailure
        if let requested {
            failure = TaskFailure(
                type: "MaxRetriesExceededError",
                message: "retried \(envelope.retries) times (max \(policy.maxRetries)): \(requested.reason)")
        } else {
            failure = TaskFailure(error)
        }
        context.logger.info("failed", metadata: ["error": .string(failure.description)])
        await record(delivery, envelope, token: token, .failure(failure), context: context)
        metrics.failed(envelope.task, reason: "error")
    }

    private func scheduleRetry(
        _ delivery: AMQPDelivery, _ envelope: TaskEnvelope, queue: String, token: Int64, error: TaskFailure,
        delay: Duration, context: TaskContext
    ) async {
        let dueMs = MillisecondClock.now() + max(0, delay.wholeMillisecondsValue)
        var next = envelope
        next.retries += 1
        next.eta = MillisecondClock.date(dueMs)
        do {
            let message = try DelayedMessage(envelope: next, queue: queue)
            let outcome = try await persistently("retry") {
                try await store.retry(envelope.id, token: token, error: error, dueMs: dueMs, message: message)
            }
            if case .scheduled(let retries) = outcome {
                context.logger.info("retry scheduled", metadata: ["retries": "\(retries)", "delay": "\(delay)"])
                metrics.retried(envelope.task)
            }
            _ = delivery.ack()
        } catch {
            context.logger.error("could not schedule the retry; requeueing", metadata: ["error": "\(error)"])
            _ = delivery.nack(requeue: true)
        }
    }

    /// Records the outcome, then acks (ack-late: a crash before the record means a redelivery, DESIGN §5.2).
    private func record(
        _ delivery: AMQPDelivery, _ envelope: TaskEnvelope, token: Int64, _ outcome: TaskOutcome, context: TaskContext
    ) async {
        do {
            let recorded = try await persistently("finish") {
                try await recordFinish(envelope, token: token, outcome: outcome)
            }
            if recorded == .fenced { context.logger.warning("outcome fenced: another run owns the task now") }
            _ = delivery.ack()
        } catch {
            // Only when stopping: leave it to the redelivery, whose claim finds the lease expired and runs it again.
            context.logger.error("could not record the outcome; requeueing", metadata: ["error": "\(error)"])
            _ = delivery.nack(requeue: true)
        }
    }

    /// Shutdown: drop the lease so the next worker runs the task at once, and requeue the message.
    private func giveBack(
        _ delivery: AMQPDelivery, _ envelope: TaskEnvelope, token: Int64, context: TaskContext
    ) async {
        do {
            _ = try await store.release(envelope.id, token: token)
        } catch {
            context.logger.debug("could not release the lease", metadata: ["error": "\(error)"])
        }
        context.logger.info("requeued at shutdown")
        _ = delivery.nack(requeue: true)
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)) s" : "\(value) s"
    }
}

import Conveyor
import ConveyorAMQP
import ConveyorRedis
import Logging

extension WorkerSession {
    /// Records the worker and renews its tasks' leases every heartbeat interval, until cancelled.
    func heartbeatLoop() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.heartbeatInterval)
            } catch {
                return
            }
            await beat()
        }
    }

    /// One heartbeat: the worker record, lease renewal, and cancellation of runs that were revoked or lost.
    func beat() async {
        let ids = running.ids
        let record = WorkerRecord(
            id: configuration.workerID, host: host, pid: pid, queues: configuration.queues,
            slots: configuration.concurrency, running: ids, startedMs: startedMs)
        let renewal: LeaseRenewal
        do {
            // A few missed beats (a loaded machine, a short Redis hiccup) must not make a live worker vanish.
            renewal = try await store.heartbeat(
                record, lease: configuration.lease, expireAfter: max(configuration.heartbeatInterval * 3, .seconds(15)))
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            return
        }
        await renewSlots()
        for id in renewal.lost { running[id]?.cancel(.leaseLost) }
        for id in renewal.revoked {
            let reason = (try? await store.revocationReason(id)) ?? nil
            logger.info("revoked while running; cancelling", metadata: ["task.id": .string(id)])
            running[id]?.cancel(.revoked(reason ?? "revoked"))
        }
    }

    /// Cancels running tasks as soon as they are revoked: the revoke script publishes their id on this worker's
    /// revoke channel. Heartbeats remain the fallback (a message published while this subscription was down is
    /// lost, but the tombstone is not), so a subscription that cannot be made is retried, never fatal.
    /// `first` is the subscription `run()` made before consuming, if it could.
    func revocationLoop(_ first: RedisSubscription?) async {
        let channel = store.keys.revokeChannel(worker: configuration.workerID)
        var first = first
        while !Task.isCancelled {
            do {
                let subscription: RedisSubscription
                if let taken = first {
                    subscription = taken
                    first = nil
                } else {
                    subscription = try await redis.subscriber.subscribe([channel])
                }
                for await message in subscription {
                    let id = message.string
                    guard let task = running[id] else { continue }
                    let reason = (try? await store.revocationReason(id)) ?? nil
                    logger.info("revoked while running; cancelling", metadata: ["task.id": .string(id)])
                    task.cancel(.revoked(reason ?? "revoked"))
                }
                subscription.unsubscribe()
            } catch {
                logger.debug("revoke channel unavailable; retrying", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Publishes due messages from the delay set (retries, etas) until cancelled: when the next one is due, or
    /// every promote interval at the latest (a message scheduled meanwhile may be due sooner). Each is acknowledged
    /// in Redis only after the broker confirmed it, so a crash in between publishes it again rather than losing it
    /// (the claim makes the duplicate harmless).
    func promoterLoop() async {
        let clock = ContinuousClock()
        while !Task.isCancelled {
            let started = clock.now
            var pause = configuration.promoteInterval
            do {
                pause = min(pause, try await promoteOnce())
            } catch is CancellationError {
                return
            } catch {
                logger.warning("promoting delayed messages failed", metadata: ["error": "\(error)"])
            }
            // The pause counts from the script's call, so the publish that followed it does not delay the next.
            let wake = started + pause
            if pause == .zero || wake <= clock.now { continue }
            do {
                try await clock.sleep(until: wake, tolerance: .zero)
            } catch {
                return
            }
        }
    }

    /// Promotes one batch; returns how long until more is due (zero when the batch was full: more may be due now).
    private func promoteOnce() async throws -> Duration {
        let limit = 200
        // The lease of a promotion is the task lease: a promoter that dies mid-batch is replaced as fast as the
        // runs it held.
        let batch = try await store.promoteDueBatch(limit: limit, lease: configuration.lease)
        let due = batch.messages
        // At least a millisecond unless the batch was full, so a reply that says "due now" cannot spin the loop.
        let next = due.count == limit ? .zero : max(.milliseconds(1), batch.nextDue ?? configuration.promoteInterval)
        guard !due.isEmpty else { return next }
        let outgoing = due.map { promoted in
            let message = promoted.message
            let properties = AMQPProperties(
                contentType: message.properties.contentType ?? "application/json",
                contentEncoding: message.properties.contentEncoding ?? "utf-8",
                headers: AMQPTable(json: message.headers), deliveryMode: .persistent,
                priority: message.properties.priority, correlationId: message.properties.correlationID ?? promoted.id,
                replyTo: message.properties.replyTo)
            return AMQPOutgoing(
                AMQPMessage(body: message.body, properties: properties), exchange: message.exchange,
                routingKey: message.routingKey, mandatory: true)
        }
        var confirmed = due.map(\.id)
        do {
            try await broker.publish(batch: outgoing)
        } catch AMQPError.batchFailed(let failures) {
            let failed = Set(failures.map(\.index))
            confirmed = due.enumerated().filter { !failed.contains($0.offset) }.map(\.element.id)
            logger.warning(
                "some delayed messages could not be published; they are retried after their lease",
                metadata: ["failed": "\(failures.count)"])
        }
        try await store.ackPromoted(confirmed)
        return next
    }
}

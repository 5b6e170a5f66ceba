import Conveyor
import ConveyorAMQP
import ConveyorIO
import Logging

/// Where a per-key rate limit finds a message's key (``TaskRunOptions/rateLimitKey``).
public enum RateLimitKey: Sendable, Hashable, CustomStringConvertible {
    /// The producer's `conveyor_rate_limit_key` header.
    case header
    /// An argument of the task's input by name, dots going into nested objects (`"customer"`,
    /// `"account.id"`): a keyword argument, or a positional one named by ``TaskDefinition/argumentNames``.
    /// Strings are used as they are, other values as their JSON text.
    case argument(String)

    public var description: String {
        switch self {
        case .header: "header"
        case .argument(let path): "argument:\(path)"
        }
    }

    /// The key of `envelope`, or `nil` when it has none (it then counts under the task name).
    func key(of envelope: TaskEnvelope, argumentNames: [String]) -> String? {
        switch self {
        case .header:
            return envelope.rateLimitKey
        case .argument(let path):
            var components = path.split(separator: ".").map(String.init)
            guard !components.isEmpty else { return nil }
            let first = components.removeFirst()
            var value: JSONValue? = envelope.kwargs[first]
            if value == nil, let index = argumentNames.firstIndex(of: first), index < envelope.args.count {
                value = envelope.args[index]
            }
            for component in components {
                guard case .object(let fields)? = value else { return nil }
                value = fields[component]
            }
            return Self.text(value)
        }
    }

    private static func text(_ value: JSONValue?) -> String? {
        switch value {
        case nil, .null?: nil
        case .string(let text)?: text
        case let other?: String(decoding: other.jsonBytes(), as: UTF8.self)
        }
    }
}

/// The concurrency-cap slots this worker's runs hold, by task id: heartbeats renew them.
final class HeldSlots: Sendable {
    private let slots = LockedValue<[String: String]>([:])

    func insert(_ id: String, pool: String) { slots.withLock { $0[id] = pool } }
    func remove(_ id: String) { slots.withLock { _ = $0.removeValue(forKey: id) } }
    var all: [(pool: String, id: String)] { slots.withLock { $0.map { (pool: $1, id: $0) } } }
}

extension RegisteredTask {
    /// The limits a claim of `envelope` applies; `nil` (the common case) when the task has none.
    func claimLimits(for envelope: TaskEnvelope) -> ClaimLimits? {
        guard options.rateLimit != nil || options.maxRunning != nil else { return nil }
        return ClaimLimits(
            rate: options.rateLimit,
            rateKey: options.rateLimit == nil
                ? nil : options.rateLimitKey?.key(of: envelope, argumentNames: argumentNames),
            maxRunning: options.maxRunning, pool: options.pool)
    }

    /// What `P limits` records for this task; `nil` when it has no limits.
    func limitsRecord(worker: String, now: Int64) -> TaskLimitsRecord? {
        guard options.rateLimit != nil || options.maxRunning != nil else { return nil }
        return TaskLimitsRecord(
            task: name, rate: options.rateLimit?.description, burst: options.rateLimit?.burst,
            rateKey: options.rateLimit == nil ? nil : options.rateLimitKey?.description,
            maxRunning: options.maxRunning, pool: options.maxRunning == nil ? nil : (options.pool ?? name),
            worker: worker, updatedMs: now)
    }
}

extension WorkerSession {
    /// Records this worker's limits in Redis for `conveyor inspect limits`. Best effort: enforcement does not
    /// depend on it.
    func publishLimits() async {
        let now = MillisecondClock.now()
        let records = registry.tasks.values.compactMap { $0.limitsRecord(worker: configuration.workerID, now: now) }
        guard !records.isEmpty else { return }
        do {
            try await store.publishLimits(records)
        } catch {
            logger.warning("could not record the task limits", metadata: ["error": "\(error)"])
        }
    }

    /// Parks a message its rate limit or concurrency cap does not let run yet in the Redis delay set, then acks it;
    /// the promoter publishes it again when due. Nacked (requeued) only if the worker stops before it is stored.
    func park(
        _ delivery: AMQPDelivery, envelope: TaskEnvelope, queue: String, dueMs: Int64,
        cap: (pool: String, maxRunning: Int)?
    ) async {
        do {
            let message = try DelayedMessage(envelope: envelope, queue: queue)
            let due = try await persistently("park") {
                try await store.park(envelope.id, dueMs: dueMs, message: message, cap: cap)
            }
            logger.debug(
                cap == nil ? "rate limited; parked" : "concurrency cap reached; parked",
                metadata: ["task.id": .string(envelope.id), "due_ms": "\(due)"])
            _ = delivery.ack()
        } catch {
            _ = delivery.nack(requeue: true)
        }
    }

    /// When a capped task comes back at the latest if no release wakes it: when the pool's oldest slot would lapse,
    /// spread a little so waiters do not all come back at once, and never later than one lease from now.
    func cappedRetryMs(firstExpiryMs: Int64) -> Int64 {
        let now = MillisecondClock.now()
        let latest = now + configuration.lease.wholeMillisecondsValue
        return min(latest, max(now + 50, firstExpiryMs) + Int64.random(in: 20...200))
    }

    /// Frees a finished run's concurrency slot and wakes a waiter. If it fails, the slot lapses after the lease.
    func releaseSlot(_ id: String, token: Int64, pool: String, maxRunning: Int) async {
        heldSlots.remove(id)
        do {
            try await store.releaseSlot(id, token: token, pool: pool, maxRunning: maxRunning)
        } catch {
            logger.warning(
                "could not release a concurrency slot; it lapses with its lease",
                metadata: ["task.id": .string(id), "pool": .string(pool), "error": "\(error)"])
        }
    }

    /// Heartbeat: extends the slots of the capped runs, like their task leases.
    func renewSlots() async {
        let held = heldSlots.all
        guard !held.isEmpty else { return }
        do {
            try await store.renewSlots(held, lease: configuration.lease)
        } catch {
            logger.warning("could not renew concurrency slots", metadata: ["error": "\(error)"])
        }
    }
}

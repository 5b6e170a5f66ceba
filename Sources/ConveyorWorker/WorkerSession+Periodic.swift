import Conveyor
import Logging

extension WorkerSession {
    /// Takes part in electing the fleet's periodic scheduler and, while this worker leads, submits the ticks of
    /// ``WorkerConfiguration/periodic``; returns at once when the list is empty, and when the worker stops taking
    /// work (the lease is then given up so another worker takes over at once).
    func periodicLoop() async {
        guard !configuration.periodic.isEmpty else { return }
        var names = Set<String>()
        let unique = configuration.periodic.filter { names.insert($0.name).inserted }
        if unique.count < configuration.periodic.count {
            // Two schedules under one name would share one record and claim each other's ticks.
            logger.error("periodic schedule names must be unique; only the first of each name runs")
        }
        var scheduler = PeriodicScheduler(session: self, tasks: unique)
        await scheduler.run()
    }
}

/// One worker's periodic scheduler (docs/ARCHITECTURE.md, "Periodic tasks"); lives in the task of
/// ``WorkerSession/periodicLoop()`` only.
///
/// Leadership is a Redis lease with a fencing token, renewed every third of ``WorkerConfiguration/periodicLease``.
/// The leader keeps, per schedule, the next tick it will submit. Submitting a tick is: claim it in Redis (compare
/// and set of the schedule's last tick, fenced by the token), publish the task under an id derived from the
/// schedule and the tick, record the confirmed publish. A leader that dies between claim and record leaves the
/// tick pending, and the next leader publishes it again under the same id: the worker's claim runs it once.
struct PeriodicScheduler {
    let session: WorkerSession
    let tasks: [PeriodicTask]
    let lease: Duration
    var logger: Logger
    /// The lease's fencing token while this worker leads.
    var token: Int64?
    /// Per schedule name, what the leader plans; empty when not leading (filled again on taking the lead).
    var plans: [String: Plan] = [:]
    /// The client ticks are submitted through; connected when this worker first leads.
    var client: ConveyorClient?
    /// After a failed plan (Redis unavailable), when to try again (Unix ms).
    var planRetryAtMs: Int64 = 0

    struct Plan {
        /// The next tick to submit (Unix ms), `nil` if the schedule never fires again.
        var nextTick: Int64?
        /// A tick claimed whose publish is not recorded: published again before anything else.
        var pending: Int64?
        /// After a failed claim or publish, when to try again (Unix ms), so an outage is not retried in a tight loop.
        var retryAtMs: Int64 = 0
    }

    init(session: WorkerSession, tasks: [PeriodicTask]) {
        self.session = session
        self.tasks = tasks
        self.lease = max(session.configuration.periodicLease, .milliseconds(300))
        self.logger = session.logger
    }

    var store: TaskStore { session.store }
    var worker: String { session.configuration.workerID }

    mutating func run() async {
        let clock = ContinuousClock()
        var nextLeaseCheck = clock.now
        while !Task.isCancelled && session.isTakingWork {
            if clock.now >= nextLeaseCheck {
                await lead()
                // A leader renews three times per lease; a follower tries often enough to take over soon after
                // the lease runs out.
                nextLeaseCheck = clock.now + (token == nil ? min(lease / 3, .seconds(1)) : lease / 3)
            }
            if token != nil { await fireDue() }
            var wake = min(nextLeaseCheck, clock.now + .milliseconds(250))
            // A tick waiting for a retry after a failure wakes the loop at the retry, not at once.
            let due = plans.values.compactMap { plan in plan.nextTick.map { max($0, plan.retryAtMs) } }
            if token != nil, let earliest = due.min() {
                wake = min(wake, clock.now + .milliseconds(max(0, earliest - MillisecondClock.now())))
            }
            do {
                try await Task.sleep(until: wake, clock: clock)
            } catch {
                break
            }
        }
        if let token {
            do {
                try await store.periodicResign(worker: worker, token: token)
                logger.info("gave up the periodic scheduler's lead")
            } catch {
                logger.debug("could not give up the periodic lead", metadata: ["error": "\(error)"])
            }
        }
        await client?.close()
    }

    /// Takes or renews the lease.
    mutating func lead() async {
        do {
            switch try await store.periodicLead(worker: worker, lease: lease, token: token) {
            case .leader(let newToken, let acquired):
                if acquired || newToken != token {
                    logger.info(
                        "leading the periodic scheduler",
                        metadata: ["token": "\(newToken)", "schedules": "\(tasks.count)"])
                    token = newToken
                    plans = [:]
                }
            case .follower(let owner, _):
                if token != nil { stepDown("the lease is held by \(owner)") }
            }
        } catch {
            // The fence protects the ticks: a leader that cannot renew cannot claim either once the lease is gone.
            logger.warning("periodic lease call failed", metadata: ["error": "\(error)"])
        }
    }

    mutating func stepDown(_ why: String) {
        logger.info("no longer leading the periodic scheduler", metadata: ["reason": .string(why)])
        token = nil
        plans = [:]
    }

    /// Plans schedules new to this leadership and submits every due tick.
    mutating func fireDue() async {
        for task in tasks {
            guard let token else { return }
            if plans[task.name] == nil {
                guard MillisecondClock.now() >= planRetryAtMs else { continue }
                guard let plan = await plan(task, token: token) else {
                    planRetryAtMs = MillisecondClock.now() + 1_000
                    continue
                }
                plans[task.name] = plan
            }
            guard var plan = plans[task.name] else { continue }
            defer { if self.token != nil { plans[task.name] = plan } }
            guard MillisecondClock.now() >= plan.retryAtMs else { continue }
            if let pending = plan.pending {
                guard await publish(task, tick: pending) else {
                    plan.retryAtMs = MillisecondClock.now() + 1_000
                    continue
                }
                plan.pending = nil
            }
            let grace = graceMs(task)
            ticks: while let tick = plan.nextTick, tick <= MillisecondClock.now() {
                let next = task.schedule.nextTick(afterMs: tick)
                // A tick far behind (this leader stalled) is dropped unless the schedule catches up.
                if !task.catchUp && MillisecondClock.now() - tick > grace {
                    logger.info(
                        "skipping a missed periodic tick",
                        metadata: ["periodic": .string(task.name), "tick_ms": "\(tick)"])
                    plan.nextTick = next
                    continue
                }
                let id = task.taskID(tickMs: tick, prefix: store.keys.prefix)
                let claim: PeriodicTickClaim
                do {
                    claim = try await store.periodicClaimTick(
                        name: task.name, tickMs: tick, id: id, nextMs: next ?? 0, worker: worker, token: token,
                        recordTTL: recordTTL(tick: tick, next: next))
                } catch {
                    logger.warning(
                        "claiming a periodic tick failed",
                        metadata: ["periodic": .string(task.name), "error": "\(error)"])
                    plan.retryAtMs = MillisecondClock.now() + 1_000
                    break ticks
                }
                switch claim {
                case .claimed:
                    plan.nextTick = next
                    if !(await publish(task, tick: tick)) {
                        plan.pending = tick
                        plan.retryAtMs = MillisecondClock.now() + 1_000
                        break ticks
                    }
                case .done(let last):
                    // Another leader got here first (an overlap during failover): continue after its tick.
                    plan.nextTick = task.schedule.nextTick(afterMs: max(last, tick))
                case .notLeader:
                    stepDown("the lease ran out")
                    return
                }
            }
        }
    }

    /// Records the schedule for this leadership and decides its first tick: after the last one claimed; with
    /// ``PeriodicTask/catchUp`` every missed tick (the latest ``PeriodicTask/maxCatchUp``), else only the most
    /// recent missed tick within the grace; a schedule never run starts at its next tick.
    mutating func plan(_ task: PeriodicTask, token: Int64) async -> Plan? {
        let now = MillisecondClock.now()
        let schedule = task.schedule
        let upcoming = schedule.nextTick(afterMs: now)
        let recorded: (lastTickMs: Int64?, pendingTickMs: Int64?)?
        do {
            recorded = try await store.periodicPlan(
                name: task.name, task: task.task, schedule: schedule.description,
                queue: task.options.queue.isEmpty ? session.configuration.conveyor.defaultQueue : task.options.queue,
                nextMs: upcoming ?? 0, worker: worker, token: token, recordTTL: recordTTL(tick: now, next: upcoming))
        } catch {
            logger.warning(
                "recording a periodic schedule failed", metadata: ["periodic": .string(task.name), "error": "\(error)"])
            return nil
        }
        guard let recorded else {
            stepDown("the lease ran out")
            return nil
        }
        var plan = Plan(nextTick: upcoming, pending: recorded.pendingTickMs)
        guard let last = recorded.lastTickMs else { return plan }
        if task.catchUp {
            var missed: [Int64] = []
            var tick = schedule.nextTick(afterMs: last)
            while let current = tick, current <= now {
                missed.append(current)
                if missed.count > 2 * PeriodicTask.maxCatchUp { missed.removeFirst(PeriodicTask.maxCatchUp) }
                tick = schedule.nextTick(afterMs: current)
            }
            plan.nextTick = missed.suffix(PeriodicTask.maxCatchUp).first ?? tick
        } else {
            // Coalesce: of the ticks missed within the grace, only the latest is submitted.
            var latest: Int64?
            var tick = schedule.nextTick(afterMs: max(last, now - graceMs(task)))
            while let current = tick, current <= now {
                latest = current
                tick = schedule.nextTick(afterMs: current)
            }
            plan.nextTick = latest ?? tick
        }
        if plan.nextTick != upcoming {
            logger.info(
                "submitting missed periodic ticks",
                metadata: ["periodic": .string(task.name), "from_tick_ms": "\(plan.nextTick ?? 0)"])
        }
        return plan
    }

    /// Publishes tick `tick` of `task` and records it; `false` (logged) when either failed.
    mutating func publish(_ task: PeriodicTask, tick: Int64) async -> Bool {
        let id = task.taskID(tickMs: tick, prefix: store.keys.prefix)
        do {
            let client: ConveyorClient
            if let existing = self.client {
                client = existing
            } else {
                client = try await ConveyorClient.connect(session.configuration.conveyor)
                self.client = client
            }
            _ = try await client.submit(
                name: task.task, id: id, args: task.args, kwargs: task.kwargs, options: task.options)
            try await store.periodicSubmitted(name: task.name, tickMs: tick)
            logger.debug(
                "periodic task submitted",
                metadata: ["periodic": .string(task.name), "task.id": .string(id), "tick_ms": "\(tick)"])
            return true
        } catch {
            logger.warning(
                "submitting a periodic task failed; retrying",
                metadata: ["periodic": .string(task.name), "tick_ms": "\(tick)", "error": "\(error)"])
            return false
        }
    }

    func graceMs(_ task: PeriodicTask) -> Int64 {
        (task.misfireGrace ?? lease + .seconds(1)).periodicMs
    }

    /// A schedule's record outlives several periods, and at least a week, so a restarted fleet knows its last tick.
    func recordTTL(tick: Int64, next: Int64?) -> Duration {
        let period = max(0, (next ?? tick) - tick)
        return .milliseconds(max(7 * 86_400_000, 3 * period))
    }
}

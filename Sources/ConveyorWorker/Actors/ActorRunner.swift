import Conveyor
import ConveyorAMQP
import ConveyorIO
import Distributed
import Foundation
import Logging

/// One actor's subscription on one host: standby until the broker makes it the mailbox's active consumer, then
/// the actor's host, running its calls in lanes (the default one and one per concurrency group).
final class ActorRunner: Sendable {
    let id: ConveyorActorID
    let record: ActorRecord
    let entry: ActorTypeEntry
    /// Strong: the session forgets the runner when its ``run()`` returns.
    let session: ActorHostSession
    let lanes: [String: ActorLane]
    let defaultLane: ActorLane
    let groupOfMethod: [String: String]

    struct State {
        var consumer: AMQPConsumer?
        /// The instance, once this host took the actor on.
        var instance: (any DistributedActor)?
        /// Set when the actor ended (killed, dead) or another host took it over: no call runs any more.
        var ended: (type: String, reason: String)?
        var fenced = false
        var stopping = false
        /// Deliveries received and not settled yet.
        var inFlight = 0
        /// Calls started and not recorded yet: a graceful stop gives the actor up only once this is 0.
        var running = 0
        /// Deliveries received while stopping: held (unacknowledged) until the actor is given up in Redis, then
        /// returned to the mailbox for the next host.
        var held: [AMQPDelivery] = []
        /// Set once the hand-over returned the held deliveries: any that the subscription still yields after its
        /// cancel go straight back.
        var handedOver = false
        var callsSinceSnapshot = 0
    }
    let state = LockedValue(State())
    /// Outcomes waiting to be recorded: while two record scripts run, the outcomes of the calls that finish
    /// meanwhile queue and go out as one script call (a caller with many calls in flight then costs Redis one
    /// call per batch, not per call). `nil`: the state store stayed unreachable until the host stopped.
    let outcomes = GroupCommit<ActorStore.CallOutcome, Bool?>(maxBatch: 500, maxInFlight: 2)
    /// Ends when the runner stops (``stop()``, or its subscription ended): what ``handOver(_:)`` waits for.
    let stopped: AsyncStream<Void>
    let stoppedContinuation: AsyncStream<Void>.Continuation

    init(session: ActorHostSession, record: ActorRecord, entry: ActorTypeEntry) {
        self.session = session
        self.record = record
        self.entry = entry
        self.id = ConveyorActorID(record.id)
        self.defaultLane = ActorLane(limit: record.options.maxConcurrency)
        var lanes: [String: ActorLane] = [:]
        for group in record.options.concurrencyGroups { lanes[group.name] = ActorLane(limit: group.maxConcurrency) }
        self.lanes = lanes
        self.groupOfMethod = record.options.groupOfMethod
        (stopped, stoppedContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    var isActive: Bool { state.withLock { $0.instance != nil && $0.ended == nil } }
    var logger: Logger { session.logger }
    var hostID: String { session.host.hostID }

    /// Graceful stop: no new call starts here; once the calls running now are recorded, the actor is given up in
    /// Redis and only then the subscription is cancelled (see ``handOver(_:)``), so the standby host, which the
    /// broker activates at the cancel, finds the actor released and its takeover is no restart.
    func stop() {
        state.withLock { $0.stopping = true }
        stoppedContinuation.finish()
    }

    /// The actor ended (an event or a rescan said so, or this host found out): refuse every call from now on.
    func end(type: String, reason: String?) {
        state.withLock { state in
            if state.ended == nil { state.ended = (type, reason ?? "") }
        }
    }

    /// Prefetch: exactly the calls that may run at once when the mailbox is bounded (so the bound counts the
    /// waiting calls), else room for a window of calls beyond that.
    var prefetch: UInt16 {
        let running = record.options.totalConcurrency
        let window = record.options.maxPendingCalls == nil ? max(running, 128) : running
        return UInt16(clamping: window)
    }

    func run() async {
        let consumer: AMQPConsumer
        do {
            consumer = try await session.consumer.consume(
                queue: id.queue, prefetch: prefetch, consumerTag: "\(hostID).\(id.rawValue)")
        } catch {
            logger.debug(
                "actor mailbox subscribe failed", metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
            return
        }
        state.withLock { $0.consumer = consumer }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watchEnd(consumer) }
            group.addTask { await self.handOver(consumer) }
            do {
                for try await delivery in consumer {
                    let (stopping, handedOver) = state.withLock { state in
                        state.inFlight += 1
                        // Stopping: what the subscription still yields waits for the hand-over, then goes back to
                        // the mailbox for the next host.
                        if state.stopping && !state.handedOver { state.held.append(delivery) }
                        return (state.stopping, state.handedOver)
                    }
                    if handedOver { requeue(delivery) }
                    if stopping { continue }
                    if state.withLock({ $0.instance == nil && $0.ended == nil }) { await activate() }
                    let kind = delivery.properties.headers[ActorHeader.kind]?.stringValue ?? ""
                    let calls = ActorCall.calls(of: delivery, kind: kind)
                    if state.withLock({ $0.ended != nil }) || calls == nil {
                        group.addTask { await self.settleOutside(delivery, kind: kind, calls: calls ?? []) }
                        continue
                    }
                    for call in calls ?? [] {
                        let lane = groupOfMethod[ActorMethodName.base(of: call.method)].flatMap { lanes[$0] }
                        guard (lane ?? defaultLane).submit(call) else { continue }
                        group.addTask { await self.drain(lane ?? self.defaultLane) }
                    }
                }
            } catch {
                logger.debug("actor mailbox ended", metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
            }
            // The subscription ended (cancelled, the actor ended, the connection died): the calls running now
            // finish and are recorded; the ones still waiting in the lanes are requeued; the end watcher and the
            // hand-over see `stopping` and return.
            state.withLock { $0.stopping = true }
            stoppedContinuation.finish()
        }
        session.system.unhost(id)
    }

    /// Waits for a stop, then for every call that was running to be recorded (the ones waiting are requeued, and
    /// what comes back is held), gives the actor up in Redis, cancels the subscription and returns the held
    /// deliveries.
    func handOver(_ consumer: AMQPConsumer) async {
        for await _ in stopped {}
        // The calls running now are few and end on their own (a graceful stop lets them finish), so a short poll.
        while state.withLock({ $0.running > 0 }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let (hosted, ended, fenced) = state.withLock { ($0.instance != nil, $0.ended != nil, $0.fenced) }
        if hosted && !ended && !fenced {
            do {
                try await session.store.release(id.rawValue, host: hostID)
            } catch {
                logger.warning("could not give the actor up", metadata: ["actor": .string(id.rawValue)])
            }
        }
        await consumer.cancel()
        let held = state.withLock { state in
            defer {
                state.held = []
                state.handedOver = true
            }
            return state.held
        }
        for delivery in held { requeue(delivery) }
    }

    /// Takes the actor on in Redis and makes the instance (restoring the snapshot of a durable one).
    func activate() async {
        guard
            let outcome = await withStateRetry({
                try await self.session.store.host(self.id.rawValue, host: self.hostID)
            })
        else { return }
        do {
            switch outcome {
            case .host(let restarts, let arguments, let snapshot):
                let instance = try await entry.make(session.system, id, arguments)
                if let snapshot, let restore = entry.restore { try await restore(instance, snapshot) }
                state.withLock { $0.instance = instance }
                logger.info(
                    "hosting actor",
                    metadata: [
                        "actor": .string(id.rawValue), "type": .string(record.type), "restarts": "\(restarts)",
                        "restored": "\(snapshot != nil)",
                    ])
            case .killed(let reason): end(type: ActorFailureType.killed, reason: reason)
            case .dead(let reason): end(type: ActorFailureType.dead, reason: reason)
            case .missing: end(type: ActorFailureType.dead, reason: "its record is gone")
            }
        } catch {
            // The initialiser (or restore) threw: the actor cannot live.
            let reason = "its initialiser failed: \(TaskFailure(error))"
            _ = try? await session.store.end(id.rawValue, status: "dead", reason: reason)
            end(type: ActorFailureType.dead, reason: reason)
        }
    }

    /// Runs a lane's calls one after another until it has none waiting (a lane runs as many drainers as its
    /// limit allows).
    func drain(_ lane: ActorLane) async {
        await withDiscardingTaskGroup { records in
            while let next = lane.next() {
                // Checked and counted under one lock, so a hand-over never starts while a call is about to run.
                let runs = state.withLock { state in
                    if state.stopping { return false }
                    state.running += 1
                    return true
                }
                if runs {
                    await execute(next, records: &records)
                } else {
                    finish(next, requeue: true)
                }
            }
        }
    }

    /// A creation message (answered with the actor's id), a message that is not a call (refused under its
    /// correlation id), or the calls of a message once the actor ended (each refused).
    func settleOutside(_ delivery: AMQPDelivery, kind: String, calls: [ActorCall]) async {
        if state.withLock({ $0.fenced || ($0.instance == nil && $0.ended == nil) }) {
            // Another host has the actor, or this one stopped before taking it on: the message is for whoever
            // hosts it next.
            requeue(delivery)
            return
        }
        let replyTo = delivery.properties.replyTo ?? ""
        var answers: [(call: String, meta: CeleryResultMeta)] = []
        if let refusal = await refusal() {
            let ids = calls.isEmpty ? [delivery.properties.correlationId ?? ""] : calls.map(\.callID)
            answers = ids.map { ($0, Self.failureMeta($0, type: refusal.type, message: refusal.message)) }
        } else {
            let call = delivery.properties.correlationId ?? ""
            if kind == "actor-create" {
                answers = [
                    (
                        call,
                        CeleryResultMeta(
                            taskID: call, status: "SUCCESS", result: .object(["actor_id": .string(id.rawValue)]))
                    )
                ]
            } else if kind == "actor-calls" {
                let message = "an actor-calls message whose body is not a JSON array of calls"
                answers = [(call, Self.failureMeta(call, type: "ActorInvocationError", message: message))]
            } else {
                let message = "not an actor message: kind '\(kind)'"
                answers = [(call, Self.failureMeta(call, type: "UnknownMessage", message: message))]
            }
        }
        for answer in answers where !answer.call.isEmpty {
            let stored: Void? = await withStateRetry {
                try await self.session.store.refuse(call: answer.call, meta: answer.meta.jsonBytes(), replyTo: replyTo)
            }
            if stored == nil { return }
        }
        settle(delivery)
    }

    /// Why calls are refused now that the actor ended (`nil` while it lives): its end's type and reason.
    func refusal() async -> (type: String, message: String)? {
        guard let ended = state.withLock({ $0.ended }) else { return nil }
        let reason = ended.reason.isEmpty ? (try? await session.store.record(id.rawValue))?.reason ?? "" : ended.reason
        return (ended.type, reason.isEmpty ? ended.type : reason)
    }

    /// One call of a message is done: the message is acknowledged (or, if any of its calls asked for it,
    /// requeued) once all of its calls are.
    func finish(_ call: ActorCall, requeue again: Bool) {
        guard let requeueMessage = call.message.finish(requeue: again) else { return }
        if requeueMessage { requeue(call.message.delivery) } else { settle(call.message.delivery) }
    }

    /// A call that cannot run here: refused if the actor ended, else left for the actor's next host.
    func refuseOrReturn(_ call: ActorCall) async {
        guard !state.withLock({ $0.fenced || ($0.instance == nil && $0.ended == nil) }),
            let refusal = await refusal()
        else {
            finish(call, requeue: true)
            return
        }
        let meta = Self.failureMeta(call.callID, type: refusal.type, message: refusal.message)
        let replyTo = call.message.delivery.properties.replyTo ?? ""
        let stored: Void? = await withStateRetry {
            try await self.session.store.refuse(call: call.callID, meta: meta.jsonBytes(), replyTo: replyTo)
        }
        if stored != nil { finish(call, requeue: false) }
    }

    /// Runs one call and records its outcome (with the snapshot after it), then acknowledges it.
    ///
    /// The outcome of a call to an actor that is not durable is recorded in `records`, so the lane's next call
    /// runs while it is written: a lane's throughput is not bound by a Redis round trip. A durable actor's
    /// record is awaited, so its snapshots are written in call order.
    func execute(_ item: ActorCall, records: inout DiscardingTaskGroup) async {
        let call = item.callID
        let (instance, ended) = state.withLock { ($0.instance, $0.ended != nil) }
        guard let instance, !ended else {
            await refuseOrReturn(item)
            doneRunning()
            return
        }
        // A call delivered again whose outcome is recorded ran on the previous host: its effect is in the
        // snapshot (or gone with a non-durable actor's state); it does not run twice.
        if item.message.delivery.redelivered {
            switch await withStateRetry({ try await self.session.store.hasOutcome(call: call) }) {
            case true?:
                finish(item, requeue: false)
                doneRunning()
                return
            case nil:
                doneRunning()
                return
            case false?:
                // Delivered before (to a host that died, say) without an outcome: it may have run there too.
                logger.notice(
                    "running a redelivered call again",
                    metadata: ["actor": .string(id.rawValue), "call": .string(call)])
            }
        }
        let outcome = await invoke(instance, method: item.method, arguments: item.arguments, generics: item.generics)
        let meta: CeleryResultMeta
        switch outcome {
        case .value(let value): meta = CeleryResultMeta(taskID: call, status: "SUCCESS", result: value)
        case .error(let type, let message): meta = Self.failureMeta(call, type: type, message: message)
        }
        var snapshot: [UInt8]? = nil
        if let takeSnapshot = entry.snapshot {
            let due = state.withLock { state in
                state.callsSinceSnapshot += 1
                if state.callsSinceSnapshot >= entry.snapshotEvery {
                    state.callsSinceSnapshot = 0
                    return true
                }
                return false
            }
            if due {
                do {
                    snapshot = try await takeSnapshot(instance).jsonBytes()
                } catch {
                    logger.warning("snapshot failed", metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
                }
            }
        }
        if entry.snapshot == nil {
            records.addTask {
                await self.record(item, meta: meta, snapshot: nil)
                self.doneRunning()
            }
        } else {
            await record(item, meta: meta, snapshot: snapshot)
            doneRunning()
        }
    }

    /// A call counted in `running` was recorded (or could not be, and was left to the next host).
    func doneRunning() {
        state.withLock { $0.running -= 1 }
    }

    /// Writes a call's outcome (and snapshot) if this host still hosts the actor, then settles the call. An outcome
    /// without a snapshot may share its script call with others (``outcomes``); one with a snapshot goes alone, so
    /// the snapshot is written with the outcome of the call it follows.
    func record(_ item: ActorCall, meta: CeleryResultMeta, snapshot: [UInt8]?) async {
        let outcome = ActorStore.CallOutcome(
            call: item.callID, meta: meta.jsonBytes(), replyTo: item.message.delivery.properties.replyTo ?? "")
        let recorded: Bool?
        if let snapshot {
            recorded = await withStateRetry {
                try await self.session.store.record(
                    actor: self.id.rawValue, host: self.hostID, outcomes: [outcome], snapshot: snapshot)
            }
        } else {
            recorded =
                (try? await outcomes.submit(outcome) { batch in
                    await self.withStateRetry {
                        try await self.session.store.record(
                            actor: self.id.rawValue, host: self.hostID, outcomes: batch, snapshot: nil)
                    }
                }) ?? nil
        }
        guard let recorded else { return }
        if !recorded {
            // Another host took the actor over: its state is the one that counts now; leave this call to it.
            logger.warning("actor taken over by another host", metadata: ["actor": .string(id.rawValue)])
            let consumer = state.withLock { state in
                state.fenced = true
                state.ended = state.ended ?? ("Fenced", "taken over")
                return state.consumer
            }
            finish(item, requeue: true)
            await consumer?.cancel()
            return
        }
        finish(item, requeue: false)
    }

    func invoke(
        _ instance: any DistributedActor, method: String, arguments: [JSONValue]?, generics: [String]
    ) async
        -> ConveyorResultHandler.Outcome
    {
        guard let arguments else {
            return .error(type: "ActorInvocationError", message: "the call's body is not a JSON array of arguments")
        }
        var decoder = ConveyorInvocationDecoder(arguments: arguments, generics: generics)
        let handler = ConveyorResultHandler()
        do {
            try await Self.execute(
                on: instance, system: session.system, method: method, decoder: &decoder, handler: handler)
        } catch {
            return .error(type: String(describing: type(of: error)), message: String(describing: error))
        }
        return handler.result ?? .value(.null)
    }

    static func execute<Act: DistributedActor>(
        on actor: Act, system: ConveyorActorSystem, method: String, decoder: inout ConveyorInvocationDecoder,
        handler: ConveyorResultHandler
    ) async throws {
        try await system.executeDistributedTarget(
            on: actor, target: RemoteCallTarget(method), invocationDecoder: &decoder, handler: handler)
    }

    static func failureMeta(_ call: String, type: String, message: String) -> CeleryResultMeta {
        CeleryResultMeta(
            taskID: call, status: "FAILURE",
            result: CeleryResultMeta.exceptionResult(TaskFailure(type: type, message: message)))
    }

    /// Gives a call that has not started back to the mailbox.
    func requeue(_ delivery: AMQPDelivery) {
        _ = delivery.nack(requeue: true)
        state.withLock { $0.inFlight -= 1 }
    }

    func settle(_ delivery: AMQPDelivery) {
        _ = delivery.ack()
        state.withLock { $0.inFlight -= 1 }
    }

    /// Once the actor ended: an active host refuses what is left in the mailbox, then deletes it; a standby one
    /// just unsubscribes.
    func watchEnd(_ consumer: AMQPConsumer) async {
        while !Task.isCancelled && !state.withLock({ $0.stopping }) {
            let (ended, active, inFlight, fenced) = state.withLock {
                ($0.ended != nil, $0.instance != nil, $0.inFlight, $0.fenced)
            }
            if ended && !fenced {
                if !active {
                    await consumer.cancel()
                    return
                }
                let waiting = (try? await session.consumer.queueInfo(id.queue))?.messageCount
                if waiting == nil {
                    return
                } else if waiting == 0 && inFlight == 0 {
                    _ = try? await session.consumer.deleteQueue(id.queue)
                    await consumer.cancel()
                    return
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Repeats a Redis state write while Redis is unreachable (holding the message unacknowledged), as the task
    /// worker does; `nil` once this runner stops.
    func withStateRetry<T: Sendable>(_ body: @Sendable () async throws -> T) async -> T? {
        var backoff = Duration.milliseconds(50)
        while true {
            do {
                return try await body()
            } catch {
                if state.withLock({ $0.stopping }) || Task.isCancelled { return nil }
                logger.warning(
                    "actor state write failed; retrying",
                    metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }
}

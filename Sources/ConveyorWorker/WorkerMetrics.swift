import ConveyorIO
import Metrics

/// The worker's swift-metrics instruments. Labels follow Prometheus conventions; every task event carries the
/// task name as its `task` dimension, so a backend (swift-prometheus, say) shows them per task.
///
/// | label | kind | what |
/// |---|---|---|
/// | `conveyor_tasks_received_total` | counter | messages taken from a queue (`queue`) |
/// | `conveyor_tasks_started_total` | counter | runs started |
/// | `conveyor_tasks_succeeded_total` | counter | runs that recorded SUCCESS |
/// | `conveyor_tasks_failed_total` | counter | FAILURE recorded, dead letters included (`reason`) |
/// | `conveyor_tasks_retried_total` | counter | RETRY recorded |
/// | `conveyor_tasks_skipped_total` | counter | redeliveries of finished, revoked or expired tasks |
/// | `conveyor_tasks_dead_lettered_total` | counter | messages moved to a dead-letter queue (`reason`) |
/// | `conveyor_task_run_seconds` | timer | how long runs took |
/// | `conveyor_task_queued_seconds` | timer | from submit (Conveyor producers' `conveyor_sent_ms`) to start |
/// | `conveyor_tasks_running` | gauge | tasks running now |
///
/// The instruments of each task name and queue are made once and kept: making them costs a trip through the
/// metrics factory, several times per task otherwise.
struct WorkerMetrics: Sendable {
    let running = Gauge(label: "conveyor_tasks_running")

    /// One task name's instruments.
    struct PerTask: Sendable {
        let started: Counter
        let succeeded: Counter
        let retried: Counter
        let skipped: Counter
        let ran: Timer
        let queued: Timer

        init(_ task: String) {
            let dimensions = [("task", task)]
            started = Counter(label: "conveyor_tasks_started_total", dimensions: dimensions)
            succeeded = Counter(label: "conveyor_tasks_succeeded_total", dimensions: dimensions)
            retried = Counter(label: "conveyor_tasks_retried_total", dimensions: dimensions)
            skipped = Counter(label: "conveyor_tasks_skipped_total", dimensions: dimensions)
            ran = Timer(label: "conveyor_task_run_seconds", dimensions: dimensions)
            queued = Timer(label: "conveyor_task_queued_seconds", dimensions: dimensions)
        }
    }

    private let tasks = LockedValue<[String: PerTask]>([:])
    private let queues = LockedValue<[String: Counter]>([:])

    private func task(_ name: String) -> PerTask {
        tasks.withLock { tasks in
            if let known = tasks[name] { return known }
            let made = PerTask(name)
            tasks[name] = made
            return made
        }
    }

    func received(queue: String) {
        queues.withLock { queues in
            if let known = queues[queue] { return known }
            let made = Counter(label: "conveyor_tasks_received_total", dimensions: [("queue", queue)])
            queues[queue] = made
            return made
        }.increment()
    }
    func started(_ name: String) { task(name).started.increment() }
    func succeeded(_ name: String) { task(name).succeeded.increment() }
    func retried(_ name: String) { task(name).retried.increment() }
    func skipped(_ name: String) { task(name).skipped.increment() }
    func ran(_ name: String, nanoseconds: Int64) { task(name).ran.recordNanoseconds(nanoseconds) }
    func queued(_ name: String, milliseconds: Int64) { task(name).queued.recordMilliseconds(max(0, milliseconds)) }

    // Rare events: made when they happen.
    func failed(_ task: String, reason: String) {
        Counter(label: "conveyor_tasks_failed_total", dimensions: [("task", task), ("reason", reason)]).increment()
    }
    func deadLettered(reason: String) {
        Counter(label: "conveyor_tasks_dead_lettered_total", dimensions: [("reason", reason)]).increment()
    }
}

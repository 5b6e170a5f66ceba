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
struct WorkerMetrics: Sendable {
    let running = Gauge(label: "conveyor_tasks_running")

    func received(queue: String) {
        Counter(label: "conveyor_tasks_received_total", dimensions: [("queue", queue)]).increment()
    }
    func started(_ task: String) {
        Counter(label: "conveyor_tasks_started_total", dimensions: [("task", task)]).increment()
    }
    func succeeded(_ task: String) {
        Counter(label: "conveyor_tasks_succeeded_total", dimensions: [("task", task)]).increment()
    }
    func failed(_ task: String, reason: String) {
        Counter(label: "conveyor_tasks_failed_total", dimensions: [("task", task), ("reason", reason)]).increment()
    }
    func retried(_ task: String) {
        Counter(label: "conveyor_tasks_retried_total", dimensions: [("task", task)]).increment()
    }
    func skipped(_ task: String) {
        Counter(label: "conveyor_tasks_skipped_total", dimensions: [("task", task)]).increment()
    }
    func deadLettered(reason: String) {
        Counter(label: "conveyor_tasks_dead_lettered_total", dimensions: [("reason", reason)]).increment()
    }
    func ran(_ task: String, nanoseconds: Int64) {
        Timer(label: "conveyor_task_run_seconds", dimensions: [("task", task)]).recordNanoseconds(nanoseconds)
    }
    func queued(_ task: String, milliseconds: Int64) {
        Timer(label: "conveyor_task_queued_seconds", dimensions: [("task", task)])
            .recordMilliseconds(max(0, milliseconds))
    }
}

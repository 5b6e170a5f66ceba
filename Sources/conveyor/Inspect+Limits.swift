import ArgumentParser
import Conveyor
import Foundation

extension Inspect {
    /// `conveyor inspect limits`: each task's fleet-wide rate limit and concurrency cap, as the workers recorded
    /// them when they started, with their state now.
    struct Limits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each task's rate limit and concurrency cap, and where they stand now.",
            discussion: """
                Limits are configured on workers (TaskRunOptions); each worker records them in Redis when it starts. \
                NEXT RUN is when the task-wide rate limit lets the next run start (per-key limits keep one time per \
                key); RUNNING counts the live slots of the pool, WAITING the tasks parked until one frees.
                """)

        @OptionGroup var output: OutputOptions
        @OptionGroup var servers: ServerOptions

        func run() async throws {
            CLI.bootstrapLogging()
            let statuses = try await CLI.withClient(servers) { client in try await client.store.limitStatuses() }
            if output.json {
                CLI.printJSON(.array(statuses.map(Self.json)))
                return
            }
            guard !statuses.isEmpty else {
                print("no limits recorded (no worker with a rate limit or a concurrency cap has started)")
                return
            }
            let rows = statuses.map { status -> [String] in
                let record = status.record
                var rate = "-"
                var next = "-"
                if let limit = record.rate {
                    rate = limit + ((record.burst ?? 1) > 1 ? " burst \(record.burst ?? 1)" : "")
                    if let key = record.rateKey { rate += " per \(key)" }
                    if let at = status.nextAllowedMs {
                        next = at <= status.nowMs ? "now" : "in " + Format.seconds(Double(at - status.nowMs) / 1000)
                    }
                }
                var pool = "-"
                var running = "-"
                var waiting = "-"
                if let max = record.maxRunning {
                    pool = record.pool ?? record.task
                    running = "\(status.holders.count)/\(max)"
                    waiting = "\(status.waiting)"
                }
                return [record.task, rate, next, pool, running, waiting, record.worker]
            }
            print(Format.table(["TASK", "RATE", "NEXT RUN", "POOL", "RUNNING", "WAITING", "RECORDED BY"], rows))
        }

        static func json(_ status: TaskLimitsStatus) -> JSONValue {
            guard case .object(var object) = status.record.json else { return status.record.json }
            object["now_ms"] = .int(status.nowMs)
            object["next_allowed_ms"] = status.nextAllowedMs.map(JSONValue.int)
            if status.record.maxRunning != nil {
                object["holders"] = .array(
                    status.holders.map { .object(["id": .string($0.id), "until_ms": .int($0.untilMs)]) })
                object["running"] = .int(Int64(status.holders.count))
                object["waiting"] = .int(Int64(status.waiting))
            }
            return .object(object)
        }
    }
}

import ArgumentParser
import Conveyor
import Foundation

extension Inspect {
    /// `conveyor inspect scheduled`: the tasks in the Redis delay set (countdowns, etas, retries), soonest first.
    struct Scheduled: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tasks waiting in the delay set until they are due (countdowns, etas, retries).",
            discussion: """
                Soonest first: id, task name, queue and due time. A worker's promoter publishes each when due; a \
                task being published at this moment is not listed.
                """)

        @Option(help: "Show at most this many.")
        var limit: Int = 100

        @OptionGroup var output: OutputOptions
        @OptionGroup var servers: ServerOptions

        func validate() throws {
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            CLI.bootstrapLogging()
            let limit = limit
            let (tasks, total) = try await CLI.withClient(servers) { client in
                try await client.store.scheduled(limit: limit)
            }
            if output.json {
                CLI.printJSON(
                    .object(["total": .int(Int64(total)), "tasks": .array(tasks.map(Self.json))]))
                return
            }
            guard !tasks.isEmpty else {
                print("no scheduled tasks")
                return
            }
            let now = Date()
            let rows = tasks.map { task in
                [
                    task.id, task.name ?? "-", task.queue ?? "-", Format.time(ms: task.dueMs),
                    Self.dueIn(ms: task.dueMs, now: now),
                ]
            }
            print(Format.table(["ID", "NAME", "QUEUE", "DUE", "IN"], rows))
            if total > tasks.count { print("(\(tasks.count) of \(total) shown; see --limit)") }
        }

        static func dueIn(ms: Int64, now: Date) -> String {
            let seconds = Double(ms) / 1000 - now.timeIntervalSince1970
            return seconds <= 0 ? "due" : Format.seconds(seconds)
        }

        static func json(_ task: ScheduledTask) -> JSONValue {
            var object: [String: JSONValue] = ["id": .string(task.id), "due_ms": .int(task.dueMs)]
            object["name"] = task.name.map(JSONValue.string)
            object["queue"] = task.queue.map(JSONValue.string)
            return .object(object)
        }
    }
}

import ArgumentParser
import Conveyor
import Foundation

/// `conveyor inspect workers|queues|scheduled|limits|periodic|actors|alive`: the live workers, the queues' depths,
/// the delay set, the fleet-wide task limits, the periodic schedules, the live actors, a health probe.
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Show the live workers, the queues' depths and consumers, the tasks waiting to be due, the task limits, the periodic schedules, the live actors, or whether a worker here is alive.",
        subcommands: [
            Workers.self, Queues.self, Scheduled.self, Limits.self, Periodic.self, Actors.self, Alive.self,
        ])

    struct Workers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the workers that beat recently (from their heartbeat records in Redis).")

        @OptionGroup var output: OutputOptions
        @OptionGroup var servers: ServerOptions

        func run() async throws {
            CLI.bootstrapLogging()
            let workers = try await CLI.withClient(servers) { client in try await client.store.workers() }
            let now = Date()
            if output.json {
                CLI.printJSON(.array(workers.map { Self.json($0, now: now) }))
                return
            }
            guard !workers.isEmpty else {
                print("no live workers")
                return
            }
            let rows = workers.map { worker in
                [
                    worker.id, worker.host, "\(worker.pid)", worker.queues.joined(separator: ","), "\(worker.slots)",
                    "\(worker.running.count)", worker.lastBeatMs.map { Format.age(ms: $0, now: now) } ?? "-",
                ]
            }
            print(Format.table(["ID", "HOST", "PID", "QUEUES", "SLOTS", "RUNNING", "LAST BEAT"], rows))
        }

        static func json(_ worker: WorkerRecord, now: Date) -> JSONValue {
            var object: [String: JSONValue] = [
                "id": .string(worker.id), "host": .string(worker.host), "pid": .int(Int64(worker.pid)),
                "queues": .array(worker.queues.map(JSONValue.string)), "slots": .int(Int64(worker.slots)),
                "running": .array(worker.running.map(JSONValue.string)), "started_ms": .int(worker.startedMs),
            ]
            if let beat = worker.lastBeatMs {
                object["last_beat_ms"] = .int(beat)
                object["last_beat_age_s"] = .double(max(0, now.timeIntervalSince1970 - Double(beat) / 1000))
            }
            return .object(object)
        }
    }

    struct Queues: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each queue's ready messages and consumers, with its dead-letter queue (<queue>.dlq).",
            discussion: """
                Without --queue: every queue a live worker consumes. Messages counts those ready for delivery, not \
                those a worker holds.
                """)

        @Option(name: .customLong("queue"), help: "A queue to show (repeatable).")
        var queues: [String] = []

        @OptionGroup var output: OutputOptions
        @OptionGroup var servers: ServerOptions

        /// One row: a queue, or the dead-letter queue of `deadLetterOf`.
        struct Row {
            var name: String
            var deadLetterOf: String?
            var messages: Int?
            var consumers: Int?
        }

        func run() async throws {
            CLI.bootstrapLogging()
            let requested = queues
            let rows: [Row]? = try await CLI.withClient(servers) { client in
                var names = requested
                if names.isEmpty {
                    names = Set(try await client.store.workers().flatMap(\.queues)).sorted()
                    if names.isEmpty { return nil }
                }
                var rows: [Row] = []
                for name in names {
                    let deadLetters = client.configuration.topology.deadLetterQueue(for: name)
                    for (queue, of) in [(name, nil), (deadLetters, name)] as [(String, String?)] {
                        let info = try await client.broker.queueInfo(queue)
                        rows.append(
                            Row(
                                name: queue, deadLetterOf: of, messages: info?.messageCount,
                                consumers: info?.consumerCount))
                    }
                }
                return rows
            }
            guard let rows else {
                if output.json {
                    CLI.printJSON(.array([]))
                } else {
                    print("no live workers, so no queues to show; name some with --queue")
                }
                return
            }
            if output.json {
                CLI.printJSON(.array(rows.map(Self.json)))
                return
            }
            print(
                Format.table(
                    ["QUEUE", "MESSAGES", "CONSUMERS"],
                    rows.map { row in
                        guard let messages = row.messages, let consumers = row.consumers else {
                            return [row.name, "(missing)", ""]
                        }
                        return [row.name, Format.grouped(messages), "\(consumers)"]
                    }))
        }

        static func json(_ row: Row) -> JSONValue {
            var object: [String: JSONValue] = ["name": .string(row.name), "exists": .bool(row.messages != nil)]
            object["dead_letter_of"] = row.deadLetterOf.map(JSONValue.string)
            object["messages"] = row.messages.map { .int(Int64($0)) }
            object["consumers"] = row.consumers.map { .int(Int64($0)) }
            return .object(object)
        }
    }
}

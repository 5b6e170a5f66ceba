import ArgumentParser
import Conveyor
import Foundation

extension Inspect {
    /// `conveyor inspect periodic`: the periodic scheduler's leader and each schedule's last tick and next run.
    struct Periodic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the periodic scheduler's leader and each schedule's last tick and next run.",
            discussion: """
                Read from Redis (P periodic:leader, P periodic:schedule:<name>). A schedule appears once a leader \
                has run it; PENDING is a tick claimed whose publish is not yet confirmed.
                """)

        @OptionGroup var output: OutputOptions
        @OptionGroup var servers: ServerOptions

        func run() async throws {
            CLI.bootstrapLogging()
            let (leader, schedules) = try await CLI.withClient(servers) { client in
                (try await client.store.periodicLeader(), try await client.store.periodicSchedules())
            }
            let now = Date()
            if output.json {
                CLI.printJSON(
                    .object([
                        "leader": leader.map(Self.json) ?? .null, "schedules": .array(schedules.map(Self.json)),
                    ]))
                return
            }
            if let leader {
                let expiry = leader.untilMs.map { ", lease until \(Format.time(ms: $0))" } ?? ""
                print("leader: \(leader.owner) (token \(leader.token)\(expiry))")
            } else {
                print("leader: none (no worker with periodic tasks holds the lease)")
            }
            guard !schedules.isEmpty else {
                print("no periodic schedules recorded")
                return
            }
            let rows = schedules.map { record in
                [
                    record.name, record.task ?? "-", record.schedule ?? "-", record.queue ?? "-",
                    record.lastTickMs.map { Format.time(ms: $0) } ?? "-",
                    record.lastRunMs.map { Format.age(ms: $0, now: now) } ?? "-",
                    record.nextMs.flatMap { $0 > 0 ? Format.age(ms: $0, now: now) : nil } ?? "-",
                    record.pendingTickMs.map { Format.time(ms: $0) } ?? "-", "\(record.submitted)",
                ]
            }
            print(
                Format.table(
                    ["NAME", "TASK", "SCHEDULE", "QUEUE", "LAST TICK", "LAST RUN", "NEXT RUN", "PENDING", "SUBMITTED"],
                    rows))
        }

        static func json(_ leader: PeriodicLeaderRecord) -> JSONValue {
            var object: [String: JSONValue] = ["owner": .string(leader.owner), "token": .int(leader.token)]
            object["acquired_ms"] = leader.acquiredMs.map(JSONValue.int)
            object["until_ms"] = leader.untilMs.map(JSONValue.int)
            return .object(object)
        }

        static func json(_ record: PeriodicScheduleRecord) -> JSONValue {
            var object: [String: JSONValue] = ["name": .string(record.name), "submitted": .int(record.submitted)]
            object["task"] = record.task.map(JSONValue.string)
            object["schedule"] = record.schedule.map(JSONValue.string)
            object["queue"] = record.queue.map(JSONValue.string)
            object["last_tick_ms"] = record.lastTickMs.map(JSONValue.int)
            object["last_id"] = record.lastID.map(JSONValue.string)
            object["last_run_ms"] = record.lastRunMs.map(JSONValue.int)
            object["next_ms"] = record.nextMs.flatMap { $0 > 0 ? .int($0) : nil }
            object["pending_tick_ms"] = record.pendingTickMs.map(JSONValue.int)
            object["claimed_by"] = record.claimedBy.map(JSONValue.string)
            return .object(object)
        }
    }
}

import ArgumentParser
import Conveyor
import Foundation

/// `conveyor status ID`: what Redis knows about a task.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a task's state and details.",
        discussion: """
            A task Redis does not know (not yet taken by a worker, unknown, or expired) is PENDING, as in Celery.
            """)

    @Argument(help: "The task id.")
    var id: String

    @OptionGroup var output: OutputOptions
    @OptionGroup var servers: ServerOptions

    func run() async throws {
        CLI.bootstrapLogging()
        let json = output.json
        let status = try await CLI.withClient(servers) { client in try await client.status(id) }
        if json {
            CLI.printJSON(Self.json(status))
        } else {
            print(Self.text(status))
        }
    }

    static func json(_ status: TaskStatus) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(status.id), "state": .string(status.state.rawValue),
            "attempts": .int(Int64(status.attempts)), "retries": .int(Int64(status.retries)),
            "source": .string(source(status.source)),
        ]
        object["name"] = status.name.map(JSONValue.string)
        object["queue"] = status.queue.map(JSONValue.string)
        object["worker"] = status.worker.map(JSONValue.string)
        object["reason"] = status.reason.map(JSONValue.string)
        object["lease_owner"] = status.leaseOwner.map(JSONValue.string)
        object["lease_until_ms"] = status.leaseUntilMs.map(JSONValue.int)
        object["received_ms"] = status.receivedMs.map(JSONValue.int)
        object["started_ms"] = status.startedMs.map(JSONValue.int)
        object["finished_ms"] = status.finishedMs.map(JSONValue.int)
        if let progress = status.progress {
            var fields: [String: JSONValue] = ["fraction": .double(progress.fraction)]
            fields["message"] = progress.message.map(JSONValue.string)
            fields["current"] = progress.current.map(JSONValue.double)
            fields["total"] = progress.total.map(JSONValue.double)
            object["progress"] = .object(fields)
        }
        if let error = status.error {
            object["error"] = .object(["type": .string(error.type), "message": .string(error.message)])
        }
        return .object(object)
    }

    static func text(_ status: TaskStatus) -> String {
        var lines: [(String, String)] = [("id", status.id), ("state", status.state.rawValue)]
        if status.source == .none {
            lines.append(("", "(Redis has no record of this task: not yet taken by a worker, unknown, or expired)"))
        }
        if let name = status.name { lines.append(("name", name)) }
        if let queue = status.queue { lines.append(("queue", queue)) }
        if let worker = status.worker { lines.append(("worker", worker)) }
        if status.source == .taskRecord {
            lines.append(("attempts", "\(status.attempts)"))
        }
        if status.source != .none { lines.append(("retries", "\(status.retries)")) }
        if let progress = status.progress {
            let percent = String(format: "%.0f%%", progress.fraction * 100)
            lines.append(("progress", percent + (progress.message.map { "  \($0)" } ?? "")))
        }
        if let error = status.error { lines.append(("error", "\(error.type): \(error.message)")) }
        if let reason = status.reason { lines.append(("reason", reason)) }
        let now = Date()
        for (label, ms) in [
            ("received", status.receivedMs), ("started", status.startedMs), ("finished", status.finishedMs),
        ] {
            if let ms { lines.append((label, "\(Format.time(ms: ms))  (\(Format.age(ms: ms, now: now)))")) }
        }
        if let owner = status.leaseOwner, let until = status.leaseUntilMs {
            lines.append(("lease", "\(owner) until \(Format.time(ms: until))"))
        }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { label, value in
            (label.isEmpty ? "" : label + ":").padding(toLength: width + 2, withPad: " ", startingAt: 0) + value
        }.joined(separator: "\n")
    }

    static func source(_ source: TaskStatus.Source) -> String {
        switch source {
        case .taskRecord: "task-record"
        case .celeryResult: "celery-result"
        case .none: "none"
        }
    }
}

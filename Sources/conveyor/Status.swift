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

    static func json(_ status: TaskStatus) -> JSONValue { status.jsonValue }

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
}

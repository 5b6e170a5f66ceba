import ArgumentParser
import Conveyor
import Foundation

/// `conveyor submit NAME`: sends one task by name, like Celery's `send_task`, and prints its id.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a task by name and print its id.",
        discussion: """
            The message is confirmed by the broker before the id is printed. Example:
              conveyor submit examples.add --kwargs '{"a": 2, "b": 3}' --queue demo
            """)

    @Argument(help: "The registered task name, e.g. examples.add.")
    var name: String

    @OptionGroup var task: TaskArgumentOptions

    @Option(help: "Priority 0-9, higher first (only on queues declared with x-max-priority).")
    var priority: UInt8?

    @Option(help: ArgumentHelp("Run no earlier than this many seconds from now.", valueName: "seconds"))
    var countdown: Double?

    @Option(
        help: ArgumentHelp("Run no earlier than this time, ISO 8601 (UTC unless it has an offset).", valueName: "time"))
    var eta: String?

    @Option(
        help: ArgumentHelp(
            "Do not run after this: seconds from now, or an ISO 8601 time. An expired task is recorded REVOKED.",
            valueName: "seconds-or-time"))
    var expires: String?

    @Option(
        name: .customLong("idempotency-key"),
        help: ArgumentHelp(
            "Submits with the same key within its TTL (24 h) name one task: the first one's id is printed.",
            valueName: "key"))
    var idempotencyKey: String?

    @Option(
        name: .customLong("max-queued"),
        help: ArgumentHelp(
            "Refuse the submit (queue full) when the queue already holds this many ready messages.", valueName: "n"))
    var maxQueued: Int?

    @OptionGroup var output: OutputOptions
    @OptionGroup var servers: ServerOptions

    func validate() throws {
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("the task name is empty") }
        _ = try task.parsedKwargs()
        _ = try task.parsedArgs()
        if let maxQueued, maxQueued < 0 { throw ValidationError("--max-queued must be zero or more") }
        if let priority, priority > 9 { throw ValidationError("--priority must be 0-9, got \(priority)") }
        if let countdown, !(countdown >= 0) || !countdown.isFinite {
            throw ValidationError("--countdown must be zero or more seconds")
        }
        _ = try parsedETA()
        _ = try parsedExpires(now: Date())
    }

    func run() async throws {
        CLI.bootstrapLogging()
        // An empty queue means the client's default queue.
        var options = TaskOptions(
            queue: task.queueName, priority: priority,
            expires: try parsedExpires(now: Date()), countdown: countdown, eta: try parsedETA(),
            idempotencyKey: idempotencyKey)
        options.maxQueued = maxQueued
        let kwargs = try task.parsedKwargs()
        let args = try task.parsedArgs()
        let json = output.json
        try await CLI.withClient(servers) { client in
            let ref = try await client.submit(name: name, args: args, kwargs: kwargs, options: options)
            let queue = client.queueName(for: options)
            if json {
                CLI.printJSON(.object(["id": .string(ref.id), "queue": .string(queue)]))
            } else {
                print(ref.id)
            }
        }
    }

    func parsedETA() throws -> Date? {
        guard let eta else { return nil }
        guard let date = CeleryDate.parse(eta) else {
            throw ValidationError("--eta is not an ISO 8601 time like 2026-01-02T03:04:05Z: '\(eta)'")
        }
        return date
    }

    func parsedExpires(now: Date) throws -> Date? {
        guard let expires else { return nil }
        if let seconds = Double(expires) {
            guard seconds.isFinite else { throw ValidationError("--expires must be finite") }
            return now.addingTimeInterval(seconds)
        }
        guard let date = CeleryDate.parse(expires) else {
            throw ValidationError("--expires is neither seconds nor an ISO 8601 time: '\(expires)'")
        }
        return date
    }
}

extension ConveyorClient {
    /// The queue a task submitted with `options` goes to (the configuration's default when none is set).
    func queueName(for options: TaskOptions) -> String {
        options.queue.isEmpty ? configuration.defaultQueue : options.queue
    }
}

import ArgumentParser
import Conveyor

/// `conveyor cancel ID`: revokes a task.
struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a task: a queued or delayed one never runs, a running one is stopped.",
        discussion: """
            The revocation is durable (kept in Redis for seven days): workers check it before running the task and \
            in every heartbeat while they run it. Cancelling a finished task changes nothing and says so.
            """)

    @Argument(help: "The task id.")
    var id: String

    @Option(help: "The reason recorded with the revocation.")
    var reason: String = "cancelled"

    @OptionGroup var output: OutputOptions
    @OptionGroup var servers: ServerOptions

    func run() async throws {
        CLI.bootstrapLogging()
        let outcome = try await CLI.withClient(servers) { client in try await client.cancel(id, reason: reason) }
        let (result, text): (String, String) =
            switch outcome {
            case .revoked: ("revoked", "\(id): REVOKED, it will not run")
            case .running(let worker): ("stopping", "\(id): running on \(worker), which is stopping it")
            case .alreadyFinished(let state): ("finished", "\(id): already \(state.rawValue), nothing to cancel")
            }
        if output.json {
            var object: [String: JSONValue] = ["id": .string(id), "result": .string(result)]
            if case .running(let worker) = outcome { object["worker"] = .string(worker) }
            if case .alreadyFinished(let state) = outcome { object["state"] = .string(state.rawValue) }
            CLI.printJSON(.object(object))
        } else {
            print(text)
        }
    }
}

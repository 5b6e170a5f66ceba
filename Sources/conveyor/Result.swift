import ArgumentParser
import Conveyor
import Foundation

/// `conveyor result ID`: a task's result, now or once it is ready.
struct Result: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a task's result (JSON).",
        discussion: """
            Exit status:
              0  SUCCESS: the result is on standard output
              1  FAILURE: its error type and message go to standard error;
                 also when a server cannot be reached
              2  REVOKED (cancelled or expired)
              3  not ready (PENDING, STARTED, RETRY...), or still not ready
                 when --wait --timeout runs out
            With --json each outcome is one JSON object on standard output,
            with the same exit status.
            """)

    @Argument(help: "The task id.")
    var id: String

    @Flag(help: "Wait until the task is ready (SUCCESS, FAILURE or REVOKED).")
    var wait = false

    @Option(
        help: ArgumentHelp(
            "With --wait: give up after this many seconds (default: wait forever).", valueName: "seconds"))
    var timeout: Double?

    @OptionGroup var output: OutputOptions
    @OptionGroup var servers: ServerOptions

    static let failureExit: Int32 = 1
    static let revokedExit: Int32 = 2
    static let notReadyExit: Int32 = 3

    func validate() throws {
        if let timeout {
            guard wait else { throw ValidationError("--timeout needs --wait") }
            guard timeout >= 0, timeout.isFinite else {
                throw ValidationError("--timeout must be zero or more seconds")
            }
        }
    }

    /// What the command found.
    enum Outcome {
        case success(JSONValue)
        case failure(TaskFailure)
        case revoked(String)
        case notReady(String)
        case timedOut(after: Double, state: String)

        /// `waited`: the seconds a wait lasted, when there was one (a result still not ready then timed out).
        init(_ result: TaskResult, waited: Double?) {
            switch result {
            case .success(let value): self = .success(value)
            case .failure(let failure): self = .failure(failure)
            case .revoked(let reason): self = .revoked(reason)
            case .notReady(let state):
                self = waited.map { .timedOut(after: $0, state: state.rawValue) } ?? .notReady(state.rawValue)
            }
        }
    }

    func run() async throws {
        CLI.bootstrapLogging()
        let outcome: Outcome = try await CLI.withClient(servers) { client in
            wait ? try await waitForResult(client) : try await currentResult(client)
        }
        let code = report(outcome)
        if code != 0 { throw ExitCode(code) }
    }

    private func currentResult(_ client: ConveyorClient) async throws -> Outcome {
        Outcome(try await client.currentResult(of: id), waited: nil)
    }

    private func waitForResult(_ client: ConveyorClient) async throws -> Outcome {
        // "Forever" as a duration the clock can add without overflowing: a year.
        let limit = timeout.map { Duration.clampedSeconds($0) } ?? .seconds(365 * 86_400)
        return Outcome(try await client.awaitResult(of: id, timeout: limit), waited: timeout ?? 0)
    }

    /// Prints the outcome and returns the exit status it stands for.
    private func report(_ outcome: Outcome) -> Int32 {
        let json = output.json
        let code: Int32
        var object: [String: JSONValue] = ["id": .string(id)]
        switch outcome {
        case .success(let value):
            code = 0
            object["state"] = .string(TaskState.success.rawValue)
            object["result"] = value
            if !json { print(String(decoding: value.jsonBytes(), as: UTF8.self)) }
        case .failure(let failure):
            code = Self.failureExit
            object["state"] = .string(TaskState.failure.rawValue)
            object["error"] = .object(["type": .string(failure.type), "message": .string(failure.message)])
            if !json { CLI.printError("FAILURE: \(failure.type): \(failure.message)") }
        case .revoked(let reason):
            code = Self.revokedExit
            object["state"] = .string(TaskState.revoked.rawValue)
            object["reason"] = .string(reason)
            if !json { CLI.printError("REVOKED: \(reason)") }
        case .notReady(let state):
            code = Self.notReadyExit
            object["state"] = .string(state)
            if !json { CLI.printError("\(state): not ready yet (conveyor result --wait \(id) waits for it)") }
        case .timedOut(let after, let state):
            code = Self.notReadyExit
            object["state"] = .string(state)
            object["timed_out"] = .bool(true)
            if !json { CLI.printError("\(state): not ready after \(Format.seconds(after))") }
        }
        if json { CLI.printJSON(.object(object)) }
        return code
    }
}

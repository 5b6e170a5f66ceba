import ArgumentParser
import Conveyor
import Foundation

/// `conveyor stream NAME`: submits a generator and prints its items as they arrive; `--follow ID` reads one that
/// already exists.
struct Stream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a generator task and print its items as they arrive, one JSON value per line.",
        discussion: """
            Examples:
              conveyor stream examples.tokens --kwargs '{"text": "one two three"}' --queue demo
              conveyor stream --follow 7525eb96-…      (any generator, running or finished)
            Exit status: 0 when the generator ended normally; 1 when it failed (its error type and message go to \
            standard error) or a server cannot be reached; 2 when it was revoked.
            """)

    @Argument(help: "The registered generator name, e.g. examples.count (not with --follow).")
    var name: String?

    @OptionGroup var task: TaskArgumentOptions

    @Option(help: ArgumentHelp("At most this many items produced and not yet printed.", valueName: "items"))
    var bound: Int?

    @Option(help: ArgumentHelp("Print the items of this existing generator task instead.", valueName: "id"))
    var follow: String?

    @OptionGroup var servers: ServerOptions

    func validate() throws {
        switch (name, follow) {
        case (nil, nil): throw ValidationError("give a generator name, or --follow ID")
        case (.some, .some): throw ValidationError("give a generator name or --follow ID, not both")
        case (.some(let name), nil):
            if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("the name is empty") }
        case (nil, .some):
            if !task.isEmpty {
                throw ValidationError("--kwargs, --args and --queue submit a generator; --follow reads one")
            }
        }
        if let bound, bound < 1 { throw ValidationError("--bound must be at least 1") }
        _ = try task.parsedKwargs()
        _ = try task.parsedArgs()
    }

    func run() async throws {
        CLI.bootstrapLogging()
        let (args, kwargs) = (try task.parsedArgs(), try task.parsedKwargs())
        let exit: Int32 = try await CLI.withClient(servers) { client in
            let stream: ConveyorStream<JSONValue>
            if let follow {
                stream = client.follow(follow, recordsPosition: bound != nil)
            } else {
                stream = try await client.stream(
                    name: name ?? "", args: args, kwargs: kwargs,
                    options: TaskOptions(queue: task.queueName),
                    backpressure: bound)
            }
            do {
                for try await item in stream {
                    FileHandle.standardOutput.write(
                        Data((String(decoding: item.jsonBytes(), as: UTF8.self) + "\n").utf8))
                }
                return 0
            } catch let error as TaskError {
                CLI.printError("conveyor: generator \(stream.id) failed: \(error.type): \(CLI.oneLine(error.message))")
                return Result.failureExit
            } catch ConveyorError.revoked(_, let reason) {
                CLI.printError("conveyor: generator \(stream.id) was revoked: \(CLI.oneLine(reason))")
                return Result.revokedExit
            }
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}

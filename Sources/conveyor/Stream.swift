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

    @Option(help: ArgumentHelp("Keyword arguments, a JSON object.", valueName: "json"))
    var kwargs: String?

    @Option(help: ArgumentHelp("Positional arguments, a JSON array.", valueName: "json"))
    var args: String?

    @Option(help: "The queue (default: celery).")
    var queue: String?

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
            if kwargs != nil || args != nil || queue != nil {
                throw ValidationError("--kwargs, --args and --queue submit a generator; --follow reads one")
            }
        }
        if let bound, bound < 1 { throw ValidationError("--bound must be at least 1") }
        _ = try parsedArguments()
    }

    func parsedArguments() throws -> (args: [JSONValue], kwargs: [String: JSONValue]) {
        var parsedArgs: [JSONValue] = []
        var parsedKwargs: [String: JSONValue] = [:]
        if let kwargs {
            guard case .object(let fields) = try Submit.parseJSON(kwargs, option: "--kwargs") else {
                throw ValidationError("--kwargs must be a JSON object, like '{\"n\": 10}'")
            }
            parsedKwargs = fields
        }
        if let args {
            guard case .array(let items) = try Submit.parseJSON(args, option: "--args") else {
                throw ValidationError("--args must be a JSON array, like '[10]'")
            }
            parsedArgs = items
        }
        return (parsedArgs, parsedKwargs)
    }

    func run() async throws {
        CLI.bootstrapLogging()
        let (args, kwargs) = try parsedArguments()
        let exit: Int32 = try await CLI.withClient(servers) { client in
            let stream: ConveyorStream<JSONValue>
            if let follow {
                stream = client.follow(follow, recordsPosition: bound != nil)
            } else {
                stream = try await client.stream(
                    name: name ?? "", args: args, kwargs: kwargs,
                    options: TaskOptions(queue: queue?.trimmingCharacters(in: .whitespaces) ?? ""),
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

import ArgumentParser
import Conveyor
import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Foundation
import Logging

/// Where the servers are: `CONVEYOR_BROKER_URL` and `CONVEYOR_REDIS_URL` (local defaults), each overridable here.
struct ServerOptions: ParsableArguments {
    @Option(
        name: .customLong("broker-url"),
        help: ArgumentHelp(
            "Broker URL(s), comma-separated (default: $CONVEYOR_BROKER_URL, else amqp://guest:guest@127.0.0.1:5672/).",
            valueName: "url"))
    var brokerURL: String?

    @Option(
        name: .customLong("redis-url"),
        help: ArgumentHelp(
            "Redis URL (default: $CONVEYOR_REDIS_URL, else redis://127.0.0.1:6379/0).", valueName: "url"))
    var redisURL: String?

    func validate() throws {
        if brokerURL?.trimmingCharacters(in: .whitespaces).isEmpty == true {
            throw ValidationError("--broker-url is empty")
        }
        if redisURL?.trimmingCharacters(in: .whitespaces).isEmpty == true {
            throw ValidationError("--redis-url is empty")
        }
    }

    /// The environment's configuration with the command line's URLs in place of its own.
    func configuration(logger: Logger) -> ConveyorConfiguration {
        var environment = ProcessInfo.processInfo.environment
        if let brokerURL { environment["CONVEYOR_BROKER_URL"] = brokerURL }
        if let redisURL { environment["CONVEYOR_REDIS_URL"] = redisURL }
        var configuration = ConveyorConfiguration.fromEnvironment(environment)
        configuration.logger = logger
        return configuration
    }
}

/// `--json` for the commands that print data.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (one document on standard output) instead of text.")
    var json = false
}

/// What every command that talks to the servers shares: connecting, reporting failures as one line, closing.
enum CLI {
    /// Log lines at `level` or above go to standard error, so standard output carries only the command's data.
    static func bootstrapLogging(_ level: Logger.Level = .error) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Connects a client to the servers of `servers`, runs `body`, and closes the client whatever happens.
    ///
    /// - Throws: `ExitCode.failure` after printing one line naming the server (URL redacted) when connecting or
    ///   talking to a server fails; what `body` throws when it is an `ExitCode`, `CleanExit` or `ValidationError`.
    static func withClient<T>(
        _ servers: ServerOptions, _ body: (ConveyorClient) async throws -> T
    ) async throws -> T {
        let configuration = servers.configuration(logger: Logger(label: "conveyor.cli"))
        let client: ConveyorClient
        do {
            client = try await ConveyorClient.connect(configuration)
        } catch {
            throw fail(describe(error, configuration: configuration, connecting: true))
        }
        do {
            let value = try await body(client)
            await client.close()
            return value
        } catch {
            await client.close()
            if isArgumentParserExit(error) { throw error }
            throw fail(describe(error, configuration: configuration, connecting: false))
        }
    }

    /// Errors ArgumentParser reports itself, with their own exit codes.
    static func isArgumentParserExit(_ error: any Error) -> Bool {
        error is ExitCode || error is CleanExit || error is ValidationError
    }

    /// Prints `conveyor: <message>` on standard error and returns the exit code to throw (1 unless given).
    static func fail(_ message: String, code: Int32 = 1) -> ExitCode {
        printError("conveyor: " + message)
        return ExitCode(code)
    }

    /// One line for standard error.
    static func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Prints a JSON document on standard output.
    static func printJSON(_ value: JSONValue) {
        print(String(decoding: value.jsonBytes(), as: UTF8.self))
    }

    /// The server an error came from.
    enum Server { case broker, redis }

    /// Which server's client threw `error`.
    static func server(of error: any Error) -> Server? {
        switch error {
        case is AMQPError: .broker
        case is RedisError: .redis
        default: nil
        }
    }

    /// A one-line description of `error` that names the server it concerns, passwords masked.
    static func describe(_ error: any Error, configuration: ConveyorConfiguration, connecting: Bool) -> String {
        let brokers = configuration.brokerURLs.map(ServerURL.redacted).joined(separator: ", ")
        let redis = ServerURL.redacted(configuration.redisURL)
        let text = oneLine(String(describing: error))
        if case ConveyorError.invalidConfiguration(let why)? = error as? ConveyorError {
            return "\(oneLine(why)) (broker: \(brokers); Redis: \(redis))"
        }
        switch server(of: error) {
        case .broker?:
            return connecting ? "cannot connect to the broker at \(brokers): \(text)" : "broker \(brokers): \(text)"
        case .redis?:
            return connecting ? "cannot connect to Redis at \(redis): \(text)" : "Redis \(redis): \(text)"
        case nil:
            return text
        }
    }

    /// `text` with line breaks replaced, so an error is always one line.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Small formatting helpers for the text output.
enum Format {
    /// `1,234,567`.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// `850 ms`, `1.23 s`, `2 min 5 s`.
    static func seconds(_ seconds: Double) -> String {
        if seconds < 1 { return String(format: "%.1f ms", seconds * 1000) }
        if seconds < 120 { return String(format: "%.2f s", seconds) }
        let whole = Int(seconds.rounded())
        return "\(whole / 60) min \(whole % 60) s"
    }

    /// A Unix-milliseconds time as ISO 8601 UTC with milliseconds.
    static func time(ms: Int64) -> String {
        // Whole seconds through the formatter, milliseconds by integer arithmetic: a Double would round them.
        let (seconds, millis) = ms.quotientAndRemainder(dividingBy: 1000)
        let whole = Date(timeIntervalSince1970: TimeInterval(millis < 0 ? seconds - 1 : seconds))
            .formatted(Date.ISO8601FormatStyle())
        return whole.dropLast() + String(format: ".%03dZ", millis < 0 ? millis + 1000 : millis)
    }

    /// How long ago a Unix-milliseconds time was: `3.2 s ago`.
    static func age(ms: Int64, now: Date = Date()) -> String {
        let seconds = now.timeIntervalSince1970 - Double(ms) / 1000
        return seconds >= 0 ? "\(Self.seconds(seconds)) ago" : "in \(Self.seconds(-seconds))"
    }

    /// Left-aligned columns separated by two spaces; the last column is not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// What a task is submitted with: its arguments as JSON and its queue (`conveyor submit`, `conveyor stream`).
struct TaskArgumentOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Keyword arguments, a JSON object.", valueName: "json"))
    var kwargs: String?

    @Option(help: ArgumentHelp("Positional arguments, a JSON array.", valueName: "json"))
    var args: String?

    @Option(help: "The queue (default: celery).")
    var queue: String?

    /// Whether any of them was given.
    var isEmpty: Bool { kwargs == nil && args == nil && queue == nil }

    /// The queue given, trimmed; empty means the client's default queue.
    var queueName: String { queue?.trimmingCharacters(in: .whitespaces) ?? "" }

    /// `--kwargs` as an object (empty when not given).
    ///
    /// - Throws: `ValidationError` when it is not JSON or not an object.
    func parsedKwargs() throws -> [String: JSONValue] {
        guard let kwargs else { return [:] }
        guard case .object(let fields) = try Self.parseJSON(kwargs, option: "--kwargs") else {
            throw ValidationError("--kwargs must be a JSON object, like '{\"a\": 2, \"b\": 3}'")
        }
        return fields
    }

    /// `--args` as an array (empty when not given).
    ///
    /// - Throws: `ValidationError` when it is not JSON or not an array.
    func parsedArgs() throws -> [JSONValue] {
        guard let args else { return [] }
        guard case .array(let items) = try Self.parseJSON(args, option: "--args") else {
            throw ValidationError("--args must be a JSON array, like '[2, 3]'")
        }
        return items
    }

    /// `text` as JSON.
    ///
    /// - Throws: `ValidationError` saying what is wrong with it, in one line.
    static func parseJSON(_ text: String, option: String) throws -> JSONValue {
        do {
            return try JSONValue(json: Array(text.utf8))
        } catch {
            let shown = text.count > 60 ? text.prefix(60) + "…" : Substring(text)
            throw ValidationError("\(option) is not valid JSON (\(error)): '\(shown)'")
        }
    }
}

import Conveyor
import Foundation

/// When a periodic task fires: a fixed interval or a cron expression.
public enum PeriodicSchedule: Sendable, Hashable, CustomStringConvertible {
    /// Every `interval`, on multiples of it since the Unix epoch (every second on the second, every five minutes
    /// at :00, :05, …), so every worker computes the same ticks.
    case every(Duration)
    /// The times a ``CronSchedule`` matches.
    case cron(CronSchedule)

    /// Parses `@every 1s` or `every 1s` (units `ms`, `s`, `m`, `h`, `d`, combinable: `1m30s`), or a cron expression
    /// (``CronSchedule``).
    ///
    /// - Throws: ``PeriodicScheduleError``.
    public static func parse(_ text: String) throws -> PeriodicSchedule {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for prefix in ["@every ", "every "] where trimmed.lowercased().hasPrefix(prefix) {
            return try .every(parseInterval(String(trimmed.dropFirst(prefix.count))))
        }
        return .cron(try CronSchedule(trimmed))
    }

    /// Parses an interval such as `1s`, `500ms`, `1m30s`, `2h`, `1.5s`; at least 10 ms.
    ///
    /// - Throws: ``PeriodicScheduleError/invalidInterval(_:)``.
    public static func parseInterval(_ text: String) throws -> Duration {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var seconds = 0.0
        guard !rest.isEmpty else { throw PeriodicScheduleError.invalidInterval(text) }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unitText.count)
            guard let value = Double(number), let unit = units.first(where: { $0.0 == unitText.lowercased() }) else {
                throw PeriodicScheduleError.invalidInterval(text)
            }
            seconds += value * unit.1
        }
        let milliseconds = (seconds * 1000).rounded()
        guard milliseconds >= 10, milliseconds < 1e15 else { throw PeriodicScheduleError.invalidInterval(text) }
        return .milliseconds(Int64(milliseconds))
    }

    /// The first tick strictly after `afterMs` (Unix ms), or `nil` if there is none.
    public func nextTick(afterMs: Int64) -> Int64? {
        switch self {
        case .every(let interval):
            let step = max(10, interval.periodicMs)
            return (afterMs.dividedFloor(by: step) + 1) * step
        case .cron(let cron):
            guard let date = cron.next(after: Date(timeIntervalSince1970: Double(afterMs) / 1000)) else { return nil }
            return MillisecondClock.milliseconds(date)
        }
    }

    /// `every 1s`, `every 1500ms`, or the cron expression.
    public var description: String {
        switch self {
        case .every(let interval):
            let ms = interval.periodicMs
            return ms % 1000 == 0 ? "every \(ms / 1000)s" : "every \(ms)ms"
        case .cron(let cron): return cron.expression
        }
    }
}

/// Why a schedule or a periodic task's description does not parse.
public enum PeriodicScheduleError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidCron(String, reason: String)
    case invalidInterval(String)
    case invalidSpec(String, reason: String)

    public var description: String {
        switch self {
        case .invalidCron(let text, let reason): "invalid cron expression '\(text)': \(reason)"
        case .invalidInterval(let text):
            "invalid interval '\(text)': expected a number and unit (ms, s, m, h, d), like 1s or 1m30s, at least 10ms"
        case .invalidSpec(let text, let reason): "invalid periodic task '\(text)': \(reason)"
        }
    }
}

/// A task the worker fleet submits on a schedule (Celery beat, built into the workers).
///
/// Every worker whose ``WorkerConfiguration/periodic`` lists schedules takes part in electing one leader through a
/// Redis lease; the leader submits each tick through the client's path (publish with confirm) under a task id
/// derived from the schedule's name and the tick, and records the tick in Redis, so each tick is submitted once
/// however many workers run and whichever of them dies. Give every worker of a fleet (a key prefix) the same list:
/// only the leader's list is used.
///
/// ```swift
/// var configuration = WorkerConfiguration(queues: ["reports"])
/// configuration.periodic = [
///     try PeriodicTask(name: "nightly-report", Reports.Build.self, input: .init(), schedule: .parse("0 3 * * *"),
///                      options: .init(queue: "reports")),
///     PeriodicTask(name: "ping", task: "monitoring.ping", schedule: .every(.seconds(30))),
/// ]
/// ```
public struct PeriodicTask: Sendable {
    /// The schedule's name: unique in the fleet, the key of its record in Redis (`P periodic:schedule:<name>`).
    public var name: String
    /// The registered task name to submit.
    public var task: String
    public var args: [JSONValue]
    public var kwargs: [String: JSONValue]
    public var schedule: PeriodicSchedule
    /// Queue, time limits, expiry… of each submission.
    public var options: TaskOptions
    /// Ticks missed while no leader ran (the fleet was down): `false` (the default) submits at most the most
    /// recent of them, and only if it is at most ``misfireGrace`` late; `true` submits every one (at most the
    /// latest ``maxCatchUp``) in order, at once.
    public var catchUp: Bool
    /// How late a missed tick may still be submitted when ``catchUp`` is off; `nil` means the scheduler's lease
    /// plus one second, which covers a leader failover.
    public var misfireGrace: Duration?

    /// The most missed ticks one catch-up submits.
    public static let maxCatchUp = 1_000

    /// A periodic task by name with raw JSON arguments.
    public init(
        name: String, task: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:],
        schedule: PeriodicSchedule, options: TaskOptions = TaskOptions(), catchUp: Bool = false,
        misfireGrace: Duration? = nil
    ) {
        self.name = name
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.schedule = schedule
        self.options = options
        self.catchUp = catchUp
        self.misfireGrace = misfireGrace
    }

    /// A periodic task of `definition` with a typed input.
    ///
    /// - Parameters:
    ///   - name: the schedule's name; the task's name when `nil`.
    ///   - options: ``TaskDefinition/defaultOptions`` when `nil`.
    /// - Throws: ``TaskInputError`` when the input does not encode as an object.
    public init<Definition: TaskDefinition>(
        name: String? = nil, _ definition: Definition.Type, input: Definition.Input, schedule: PeriodicSchedule,
        options: TaskOptions? = nil, catchUp: Bool = false, misfireGrace: Duration? = nil
    ) throws {
        self.init(
            name: name ?? Definition.name, task: Definition.name, kwargs: try Definition.encodeInput(input),
            schedule: schedule, options: options ?? Definition.defaultOptions, catchUp: catchUp,
            misfireGrace: misfireGrace)
    }

    /// The keys ``init(spec:)`` knows.
    static let specKeys = ["name", "task", "every", "cron", "kwargs", "args", "queue", "catchup", "grace"]

    /// Parses the command line's description of a periodic task: `key=value` pairs separated by commas, e.g.
    /// `name=tick,task=examples.noop,every=1s` or `name=nightly,task=reports.build,cron=0 3 * * mon-fri,queue=reports`.
    ///
    /// Keys: `name` (required), `task` (the name when absent), `every` (an interval) or `cron` (an expression;
    /// `@every 1s` too), `kwargs` (a JSON object), `args` (a JSON array), `queue`, `catchup` (`true`/`false`),
    /// `grace` (an interval). A comma separates pairs only where a known key and `=` follow it, so cron lists and
    /// JSON keep their commas.
    ///
    /// - Throws: ``PeriodicScheduleError``.
    public init(spec: String) throws {
        var pairs: [String: String] = [:]
        for piece in Self.splitSpec(spec) {
            guard let equals = piece.firstIndex(of: "=") else {
                throw PeriodicScheduleError.invalidSpec(spec, reason: "'\(piece)' is not key=value")
            }
            let key = piece[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            guard Self.specKeys.contains(key) else {
                throw PeriodicScheduleError.invalidSpec(
                    spec, reason: "unknown key '\(key)' (known: \(Self.specKeys.joined(separator: ", ")))")
            }
            pairs[key] = String(piece[piece.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        }
        guard let name = pairs["name"], !name.isEmpty else {
            throw PeriodicScheduleError.invalidSpec(spec, reason: "name= is required")
        }
        let schedule: PeriodicSchedule
        switch (pairs["every"], pairs["cron"]) {
        case (let every?, nil): schedule = .every(try PeriodicSchedule.parseInterval(every))
        case (nil, let cron?): schedule = try PeriodicSchedule.parse(cron)
        default: throw PeriodicScheduleError.invalidSpec(spec, reason: "give exactly one of every= and cron=")
        }
        var kwargs: [String: JSONValue] = [:]
        if let text = pairs["kwargs"] {
            guard case .object(let object)? = try? JSONValue(json: Array(text.utf8)) else {
                throw PeriodicScheduleError.invalidSpec(spec, reason: "kwargs= must be a JSON object")
            }
            kwargs = object
        }
        var args: [JSONValue] = []
        if let text = pairs["args"] {
            guard case .array(let array)? = try? JSONValue(json: Array(text.utf8)) else {
                throw PeriodicScheduleError.invalidSpec(spec, reason: "args= must be a JSON array")
            }
            args = array
        }
        var catchUp = false
        if let text = pairs["catchup"] {
            guard let value = Bool(text.lowercased()) else {
                throw PeriodicScheduleError.invalidSpec(spec, reason: "catchup= must be true or false")
            }
            catchUp = value
        }
        self.init(
            name: name, task: pairs["task"].flatMap { $0.isEmpty ? nil : $0 } ?? name, args: args, kwargs: kwargs,
            schedule: schedule, options: TaskOptions(queue: pairs["queue"] ?? ""), catchUp: catchUp,
            misfireGrace: try pairs["grace"].map(PeriodicSchedule.parseInterval))
    }

    /// Splits at the commas that are followed by a known key and `=`.
    static func splitSpec(_ spec: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var index = spec.startIndex
        while index < spec.endIndex {
            let character = spec[index]
            if character == "," {
                let rest = spec[spec.index(after: index)...].drop { $0 == " " }
                if specKeys.contains(where: { rest.lowercased().hasPrefix($0 + "=") }) {
                    pieces.append(current)
                    current = ""
                    index = spec.index(after: index)
                    continue
                }
            }
            current.append(character)
            index = spec.index(after: index)
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { pieces.append(current) }
        return pieces
    }

    /// The id of this schedule's submission for tick `tickMs`: the same in every worker and after every restart,
    /// for one key prefix.
    func taskID(tickMs: Int64, prefix: String) -> String {
        TaskID.derived(from: "conveyor-periodic\u{0}\(prefix)\u{0}\(name)\u{0}\(tickMs)")
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var periodicMs: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension Int64 {
    /// Division rounding towards minus infinity.
    func dividedFloor(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

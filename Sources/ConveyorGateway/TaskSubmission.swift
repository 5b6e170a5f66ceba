import Conveyor
import Foundation

/// The body of `POST /tasks`, checked: the task's name, its arguments and the options it is submitted with.
///
/// Fields: `task` (required), `args` (array), `kwargs` (object), `queue`, `priority` (0–9), `countdown` (seconds),
/// `eta` (ISO 8601), `expires` (seconds from now, or ISO 8601), `time_limit` and `soft_time_limit` (seconds),
/// `idempotency_key`, `max_queued`, `ignore_result`. Any other field is refused, so that a misspelt option is an
/// error rather than silently ignored.
struct TaskSubmission {
    var name: String
    var args: [JSONValue] = []
    var kwargs: [String: JSONValue] = [:]
    var options = TaskOptions()

    static let fields: Set<String> = [
        "task", "args", "kwargs", "queue", "priority", "countdown", "eta", "expires", "time_limit",
        "soft_time_limit", "idempotency_key", "max_queued", "ignore_result",
    ]

    /// - Throws: ``GatewayError`` (400) naming the first field that is missing, unknown or of the wrong type.
    init(json: JSONValue, now: Date) throws(GatewayError) {
        guard case .object(let object) = json else {
            throw Self.bad("the body must be a JSON object such as {\"task\": \"examples.add\", \"kwargs\": {...}}")
        }
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw Self.bad(
                "unknown field '\(unknown)' (known: \(Self.fields.sorted().joined(separator: ", ")))")
        }
        guard case .string(let name)? = object["task"], !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Self.bad("'task' must be the task's name, a non-empty string")
        }
        self.name = name
        switch object["args"] {
        case nil, .null?: break
        case .array(let args)?: self.args = args
        default: throw Self.bad("'args' must be an array")
        }
        switch object["kwargs"] {
        case nil, .null?: break
        case .object(let kwargs)?: self.kwargs = kwargs
        default: throw Self.bad("'kwargs' must be an object")
        }
        if let queue = try Self.string(object, "queue") {
            // RabbitMQ's own rules for a queue name, checked here so that they are a 400 naming the field.
            guard queue.utf8.count <= 255, !queue.hasPrefix("amq.") else {
                throw Self.bad("'queue' must be at most 255 bytes and not start with 'amq.' (RabbitMQ reserves those)")
            }
            options.queue = queue
        }
        if let priority = try Self.number(object, "priority") {
            guard priority == priority.rounded(), (0...9).contains(priority) else {
                throw Self.bad("'priority' must be a whole number 0-9")
            }
            options.priority = UInt8(priority)
        }
        if let countdown = try Self.number(object, "countdown") {
            guard countdown >= 0, countdown <= Self.longest else {
                throw Self.bad("'countdown' must be zero to \(Int(Self.longest)) seconds (ten years)")
            }
            options.countdown = countdown
        }
        if let eta = try Self.string(object, "eta") {
            guard let date = CeleryDate.parse(eta) else {
                throw Self.bad("'eta' is not an ISO 8601 time like 2026-01-02T03:04:05Z: '\(eta)'")
            }
            options.eta = date
        }
        switch object["expires"] {
        case nil, .null?: break
        case .int(let seconds)? where abs(Double(seconds)) <= Self.longest:
            options.expires = now.addingTimeInterval(Double(seconds))
        case .double(let seconds)? where abs(seconds) <= Self.longest:
            options.expires = now.addingTimeInterval(seconds)
        case .string(let text)?:
            guard let date = CeleryDate.parse(text) else {
                throw Self.bad("'expires' is neither seconds nor an ISO 8601 time: '\(text)'")
            }
            options.expires = date
        default: throw Self.bad("'expires' must be seconds from now (at most ten years) or an ISO 8601 time")
        }
        for (field, soft) in [("time_limit", false), ("soft_time_limit", true)] {
            guard let seconds = try Self.number(object, field) else { continue }
            guard seconds > 0, seconds <= Self.longest else {
                throw Self.bad("'\(field)' must be a positive number of seconds, at most ten years")
            }
            if soft { options.timeLimit.soft = seconds } else { options.timeLimit.hard = seconds }
        }
        if let key = try Self.string(object, "idempotency_key") {
            guard !key.isEmpty else { throw Self.bad("'idempotency_key' is empty") }
            options.idempotencyKey = key
        }
        if let bound = try Self.number(object, "max_queued") {
            guard bound == bound.rounded(), bound >= 0, bound < Double(Int32.max) else {
                throw Self.bad("'max_queued' must be a whole number, zero or more")
            }
            options.maxQueued = Int(bound)
        }
        switch object["ignore_result"] {
        case nil, .null?: break
        case .bool(let ignore)?: options.ignoreResult = ignore
        default: throw Self.bad("'ignore_result' must be true or false")
        }
    }

    /// Ten years, in seconds: the longest countdown, expiry or time limit taken.
    static let longest: Double = 10 * 365 * 86_400

    private static func bad(_ message: String) -> GatewayError {
        GatewayError(.badRequest, "BadRequest", message)
    }

    private static func string(_ object: [String: JSONValue], _ field: String) throws(GatewayError) -> String? {
        switch object[field] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw bad("'\(field)' must be a string")
        }
    }

    private static func number(_ object: [String: JSONValue], _ field: String) throws(GatewayError) -> Double? {
        switch object[field] {
        case nil, .null?: return nil
        case .int(let value)?: return Double(value)
        case .double(let value)? where value.isFinite: return value
        default: throw bad("'\(field)' must be a number")
        }
    }
}

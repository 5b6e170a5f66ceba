import Foundation

/// Celery message protocol v2 as Celery 5 sends it (`celery/app/amqp.py`, `as_task_v2`).
extension TaskEnvelope {
    /// The header names Celery's protocol v2 defines; everything else is Conveyor's or passed through.
    static let celeryHeaderNames: Set<String> = [
        "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries", "timelimit",
        "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    ]

    /// The AMQP headers table of this envelope, as JSON values.
    public var celeryHeaders: [String: JSONValue] {
        var headers = otherHeaders
        headers["lang"] = .string(lang)
        headers["task"] = .string(task)
        headers["id"] = .string(id)
        headers["shadow"] = shadow.map(JSONValue.string) ?? .null
        headers["eta"] = eta.map { .string(CeleryDate.format($0)) } ?? .null
        headers["expires"] = expires.map { .string(CeleryDate.format($0)) } ?? .null
        headers["group"] = group.map(JSONValue.string) ?? .null
        headers["group_index"] = groupIndex.map { .int(Int64($0)) } ?? .null
        headers["retries"] = .int(Int64(retries))
        headers["timelimit"] = .array([
            timeLimit.hard.map(JSONValue.seconds) ?? .null, timeLimit.soft.map(JSONValue.seconds) ?? .null,
        ])
        headers["root_id"] = .string(rootID ?? id)
        headers["parent_id"] = parentID.map(JSONValue.string) ?? .null
        headers["argsrepr"] = .string(argsrepr ?? Self.repr(.array(args)))
        headers["kwargsrepr"] = .string(kwargsrepr ?? Self.repr(.object(kwargs)))
        headers["origin"] = origin.map(JSONValue.string) ?? .null
        headers["ignore_result"] = .bool(ignoreResult)
        for (key, value) in conveyor { headers["conveyor_" + key] = value }
        return headers
    }

    /// The message body: `[args, kwargs, {"callbacks", "errbacks", "chain", "chord"}]` as JSON.
    ///
    /// - Throws: `EncodingError` when an argument cannot be written as JSON (a non-finite Double).
    public func celeryBody() throws -> Data {
        var embed = self.embed
        for key in ["callbacks", "errbacks", "chain", "chord"] where embed[key] == nil { embed[key] = .null }
        let body = JSONValue.array([.array(args), .object(kwargs), .object(embed)])
        if !body.isFinite {
            throw EncodingError.invalidValue(body, .init(codingPath: [], debugDescription: "a non-finite number"))
        }
        return Data(body.jsonBytes())
    }

    /// Reads an envelope from a delivered message.
    ///
    /// kombu's `{"__type__", "__value__"}` wrappers (datetime, bytes, uuid, decimal) in the arguments are
    /// unwrapped to their plain string values, which is what a Swift `Codable` input expects.
    ///
    /// - Throws: ``EnvelopeError`` saying what is wrong; the worker dead-letters the message with that reason.
    public init(
        celeryHeaders headers: [String: JSONValue],
        body: some Collection<UInt8>,
        contentType: String?,
        contentEncoding: String?,
        replyTo: String? = nil,
        priority: UInt8? = nil,
        maxBodySize: Int? = nil
    ) throws(EnvelopeError) {
        if let limit = maxBodySize, body.count > limit {
            throw .payloadTooLarge(size: body.count, limit: limit)
        }
        if let contentType, !contentType.isEmpty, contentType != "application/json" {
            throw .unsupportedContentType(contentType)
        }
        if let contentEncoding, !contentEncoding.isEmpty,
            !["utf-8", "utf8"].contains(contentEncoding.lowercased())
        {
            throw .unsupportedContentEncoding(contentEncoding)
        }
        guard let taskValue = headers["task"] else {
            // Protocol v1 put everything in the body; say so rather than "missing header".
            if case .object(let fields)? = try? JSONValue(json: body), fields["task"] != nil {
                throw .protocolVersion1
            }
            throw .missingHeader("task")
        }
        guard let task = taskValue.stringValue, !task.isEmpty else {
            throw .invalidHeader(name: "task", reason: "expected a non-empty string")
        }
        guard let idValue = headers["id"] else { throw .missingHeader("id") }
        guard let id = idValue.stringValue, !id.isEmpty else {
            throw .invalidHeader(name: "id", reason: "expected a non-empty string")
        }

        let parsed: JSONValue
        do {
            parsed = try JSONValue(json: body)
        } catch {
            throw .malformedBody("not valid JSON")
        }
        guard case .array(let parts) = parsed, parts.count == 3 || parts.count == 2 else {
            throw .malformedBody("expected [args, kwargs, embed]")
        }
        guard case .array(let args) = parts[0] else { throw .malformedBody("args must be an array") }
        guard case .object(let kwargs) = parts[1] else { throw .malformedBody("kwargs must be an object") }
        var embed: [String: JSONValue] = [:]
        if parts.count == 3 {
            switch parts[2] {
            case .object(let fields): embed = fields.filter { !$0.value.isNull }
            case .null: break
            default: throw .malformedBody("embed must be an object")
            }
        }

        self.init(id: id, task: task)
        self.args = args.map(KombuJSON.unwrap)
        self.kwargs = kwargs.mapValues(KombuJSON.unwrap)
        self.embed = embed
        self.lang = headers["lang"]?.stringValue ?? "py"
        self.shadow = headers["shadow"]?.stringValue
        self.rootID = headers["root_id"]?.stringValue
        self.parentID = headers["parent_id"]?.stringValue
        self.group = headers["group"]?.stringValue
        self.groupIndex = try Self.optionalInt(headers, "group_index")
        self.retries = try Self.optionalInt(headers, "retries") ?? 0
        self.eta = try Self.optionalDate(headers, "eta")
        self.expires = try Self.optionalDate(headers, "expires")
        self.timeLimit = try Self.timeLimit(headers["timelimit"])
        self.argsrepr = headers["argsrepr"]?.stringValue
        self.kwargsrepr = headers["kwargsrepr"]?.stringValue
        self.origin = headers["origin"]?.stringValue
        if case .bool(let ignore)? = headers["ignore_result"] { self.ignoreResult = ignore }
        self.replyTo = replyTo.flatMap { $0.isEmpty ? nil : $0 }
        self.priority = priority
        for (name, value) in headers where !Self.celeryHeaderNames.contains(name) {
            if name.hasPrefix("conveyor_") {
                conveyor[String(name.dropFirst("conveyor_".count))] = value
            } else {
                otherHeaders[name] = value
            }
        }
    }

    private static func optionalInt(_ headers: [String: JSONValue], _ name: String) throws(EnvelopeError) -> Int? {
        guard let value = headers[name], !value.isNull else { return nil }
        guard let int = value.intValue, let result = Int(exactly: int) else {
            throw .invalidHeader(name: name, reason: "expected an integer")
        }
        return result
    }

    private static func optionalDate(_ headers: [String: JSONValue], _ name: String) throws(EnvelopeError) -> Date? {
        guard let value = headers[name], !value.isNull else { return nil }
        guard let text = value.stringValue, let date = CeleryDate.parse(text) else {
            throw .invalidHeader(name: name, reason: "expected an ISO 8601 date or null")
        }
        return date
    }

    private static func timeLimit(_ value: JSONValue?) throws(EnvelopeError) -> TimeLimit {
        guard let value, !value.isNull else { return TimeLimit() }
        guard case .array(let pair) = value, pair.count == 2 else {
            throw .invalidHeader(name: "timelimit", reason: "expected [hard, soft]")
        }
        func seconds(_ v: JSONValue) throws(EnvelopeError) -> Double? {
            if v.isNull { return nil }
            guard let d = v.doubleValue, d >= 0 else {
                throw .invalidHeader(name: "timelimit", reason: "limits must be non-negative numbers or null")
            }
            return d
        }
        return TimeLimit(hard: try seconds(pair[0]), soft: try seconds(pair[1]))
    }

    /// A short Python-like rendering for `argsrepr`/`kwargsrepr`, which Celery tools display.
    static func repr(_ value: JSONValue) -> String {
        let text = String(decoding: value.jsonBytes(), as: UTF8.self)
        return text.count > 1024 ? String(text.prefix(1021)) + "..." : text
    }
}

extension JSONValue {
    /// Seconds as Celery writes them: whole numbers as integers.
    static func seconds(_ value: Double) -> JSONValue {
        value.rounded() == value && abs(value) < 1e15 ? .int(Int64(value)) : .double(value)
    }
}

/// kombu's JSON extension: values JSON cannot hold travel as `{"__type__": T, "__value__": V}`.
enum KombuJSON {
    static func unwrap(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let fields):
            if fields.count == 2, case .string(let type)? = fields["__type__"], let inner = fields["__value__"],
                ["datetime", "date", "time", "bytes", "uuid", "decimal"].contains(type)
            {
                return inner
            }
            return .object(fields.mapValues(unwrap))
        case .array(let items):
            return .array(items.map(unwrap))
        default:
            return value
        }
    }
}

/// ISO 8601 dates as Python's `datetime.isoformat()` writes them and Celery parses them.
public enum CeleryDate {
    /// `2026-01-02T03:04:05.123456+00:00` (UTC, microseconds), the form every Celery version parses.
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = seconds.rounded(.down)
        var micros = Int(((seconds - whole) * 1_000_000).rounded())
        if micros == 1_000_000 {
            whole += 1
            micros = 0
        }
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC") ?? .current
        let c = utc.dateComponents(
            [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: whole))
        func pad(_ v: Int?, _ width: Int) -> String {
            let s = String(v ?? 0)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):"
            + "\(pad(c.second, 2)).\(pad(micros, 6))+00:00"
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]`; a time without an offset is UTC (Celery's `enable_utc`).
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var i = 0
        func number(_ digits: Int) -> Int? {
            guard i + digits <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<digits {
                let b = bytes[i]
                guard b >= 48, b <= 57 else { return nil }
                value = value * 10 + Int(b - 48)
                i += 1
            }
            return value
        }
        func expect(_ char: UInt8) -> Bool {
            guard i < bytes.count, bytes[i] == char else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2) else {
            return nil
        }
        guard i < bytes.count, bytes[i] == 84 || bytes[i] == 32 else { return nil }  // 'T' or ' '
        i += 1
        guard let hour = number(2), expect(58), let minute = number(2), expect(58), let second = number(2) else {
            return nil
        }
        var fraction = 0.0
        if i < bytes.count, bytes[i] == 46 {  // '.'
            i += 1
            var scale = 0.1
            let start = i
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 {
                fraction += Double(bytes[i] - 48) * scale
                scale /= 10
                i += 1
            }
            if i == start { return nil }
        }
        var offsetSeconds = 0
        if i < bytes.count {
            if bytes[i] == 90 || bytes[i] == 122 {  // 'Z'
                i += 1
            } else if bytes[i] == 43 || bytes[i] == 45 {  // '+' or '-'
                let sign = bytes[i] == 45 ? -1 : 1
                i += 1
                guard let oh = number(2) else { return nil }
                _ = expect(58)
                guard let om = number(2) else { return nil }
                offsetSeconds = sign * (oh * 3600 + om * 60)
            } else {
                return nil
            }
        }
        guard i == bytes.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC") ?? .current
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let base = utc.date(from: components) else { return nil }
        return base.addingTimeInterval(fraction - Double(offsetSeconds))
    }
}

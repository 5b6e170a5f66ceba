import Foundation

/// The document Celery's redis result backend keeps at `celery-task-meta-<id>`, which Celery's `AsyncResult`
/// (and Conveyor's client) reads:
///
/// ```json
/// {"status": "SUCCESS", "result": 5, "traceback": null, "children": [], "date_done": "2026-…+00:00", "task_id": "…"}
/// ```
///
/// A failure's result is `{"exc_type": <type>, "exc_message": [<message>], "exc_module": "conveyor"}`; progress is
/// `{"current", "total", "fraction", "message"}` under status `PROGRESS`.
public struct CeleryResultMeta: Sendable, Hashable {
    public var taskID: String
    /// A Celery state name; Celery allows custom ones, so this is text (see ``state``).
    public var status: String
    public var result: JSONValue
    public var traceback: String?
    public var children: [JSONValue]
    /// Python's `isoformat()` of the time the task became ready; `nil` for states that are not ready.
    public var dateDone: String?
    public var groupID: String?
    public var parentID: String?
    /// Celery's `result_extended` fields; `nil` when the meta has none.
    public var extended: Extended?

    /// What Celery adds with `result_extended=True`: written all together, each possibly `null`.
    public struct Extended: Sendable, Hashable {
        public var name: String?
        public var args: JSONValue?
        public var kwargs: JSONValue?
        public var worker: String?
        public var retries: Int?
        public var queue: String?

        /// Extended fields; `nil` ones are written as `null`.
        public init(
            name: String? = nil, args: JSONValue? = nil, kwargs: JSONValue? = nil, worker: String? = nil,
            retries: Int? = nil, queue: String? = nil
        ) {
            self.name = name
            self.args = args
            self.kwargs = kwargs
            self.worker = worker
            self.retries = retries
            self.queue = queue
        }
    }

    /// A meta document; ``jsonBytes()`` writes it.
    public init(
        taskID: String, status: String, result: JSONValue = .null, traceback: String? = nil,
        children: [JSONValue] = [], dateDone: String? = nil, groupID: String? = nil, parentID: String? = nil,
        extended: Extended? = nil
    ) {
        self.taskID = taskID
        self.status = status
        self.result = result
        self.traceback = traceback
        self.children = children
        self.dateDone = dateDone
        self.groupID = groupID
        self.parentID = parentID
        self.extended = extended
    }

    /// ``status`` as a ``TaskState``; `nil` for a custom Celery state.
    public var state: TaskState? { TaskState(rawValue: status) }

    /// The error of a FAILURE, RETRY or REVOKED meta (`exc_type` and the first `exc_message` argument).
    public var failure: TaskFailure? {
        guard case .object(let fields) = result, let type = fields["exc_type"]?.stringValue else { return nil }
        let message: String
        switch fields["exc_message"] {
        case .array(let arguments)? where arguments.count == 1:
            message = arguments[0].stringValue ?? Self.text(arguments[0])
        case .array(let arguments)? where arguments.isEmpty: message = ""
        case .string(let text)?: message = text
        case let other?: message = Self.text(other)
        case nil: message = ""
        }
        return TaskFailure(type: type, message: message)
    }

    /// The progress of a PROGRESS meta.
    public var progress: TaskProgress? {
        guard status == TaskState.progress.rawValue, case .object(let fields) = result,
            let fraction = fields["fraction"]?.doubleValue
        else { return nil }
        var progress = TaskProgress(fraction: fraction, message: fields["message"]?.stringValue)
        progress.current = fields["current"]?.doubleValue
        progress.total = fields["total"]?.doubleValue
        return progress
    }

    /// ``dateDone`` parsed.
    public var dateDoneValue: Date? { dateDone.flatMap(CeleryDate.parse) }

    private static func text(_ value: JSONValue) -> String {
        var writer = JSONWriter()
        writer.value(value)
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

// MARK: - Building

extension CeleryResultMeta {
    /// The JSON text, with Celery's key order and separators.
    public func jsonBytes() -> [UInt8] {
        Self.encode(
            status: status, taskID: taskID, traceback: traceback, children: children, dateDone: .text(dateDone),
            groupID: groupID, parentID: parentID, extended: extended
        ) { $0.value(result) }
    }

    /// A failure's result: `{"exc_type": type, "exc_message": [message], "exc_module": module}`.
    public static func exceptionResult(_ failure: TaskFailure, module: String = TaskFailure.celeryModule) -> JSONValue {
        .object([
            "exc_type": .string(failure.type), "exc_message": [.string(failure.message)], "exc_module": .string(module),
        ])
    }

    /// A short, Python-looking traceback for a Swift error: Celery tools show it where a Python traceback would be.
    static func traceback(for failure: TaskFailure) -> String {
        "Traceback (most recent call last):\n  (Swift task)\n\(TaskFailure.celeryModule).\(failure.type): \(failure.message)\n"
    }

    enum DateDone {
        case none
        case text(String?)
        case milliseconds(Int64)
    }

    /// Writes a meta document; `result` writes the result value, which lets the hot path splice in result JSON the
    /// task already encoded instead of parsing and re-encoding it.
    static func encode(
        status: String, taskID: String, traceback: String?, children: [JSONValue] = [], dateDone: DateDone,
        groupID: String? = nil, parentID: String? = nil, extended: Extended? = nil, capacity: Int = 256,
        result: (inout JSONWriter) -> Void
    ) -> [UInt8] {
        var writer = JSONWriter(style: .python, capacity: capacity + 192)
        writer.raw("{")
        writer.key("status")
        writer.string(status)
        writer.separator()
        writer.key("result")
        result(&writer)
        writer.separator()
        writer.key("traceback")
        writer.optionalString(traceback)
        writer.separator()
        writer.key("children")
        writer.value(.array(children))
        writer.separator()
        writer.key("date_done")
        switch dateDone {
        case .none: writer.raw("null")
        case .text(let text): writer.optionalString(text)
        case .milliseconds(let ms):
            var date: [UInt8] = [UInt8(ascii: "\"")]
            MillisecondClock.appendISO(ms, to: &date)
            date.append(UInt8(ascii: "\""))
            writer.raw(date)
        }
        if let groupID {
            writer.separator()
            writer.key("group_id")
            writer.string(groupID)
        }
        if let parentID {
            writer.separator()
            writer.key("parent_id")
            writer.string(parentID)
        }
        if let extended {
            writer.separator()
            writer.key("name")
            writer.optionalString(extended.name)
            writer.separator()
            writer.key("args")
            writer.value(extended.args ?? .null)
            writer.separator()
            writer.key("kwargs")
            writer.value(extended.kwargs ?? .null)
            writer.separator()
            writer.key("worker")
            writer.optionalString(extended.worker)
            writer.separator()
            writer.key("retries")
            if let retries = extended.retries { writer.int(Int64(retries)) } else { writer.raw("null") }
            writer.separator()
            writer.key("queue")
            writer.optionalString(extended.queue)
        }
        writer.separator()
        writer.key("task_id")
        writer.string(taskID)
        writer.raw("}")
        return writer.bytes
    }
}

// MARK: - Parsing

extension CeleryResultMeta {
    /// Reads a meta document as Celery (or Conveyor) wrote it.
    ///
    /// - Throws: ``TaskStoreError/invalidResultMeta(_:)`` when `json` is not a JSON object with a string `status`.
    public init(json: some Collection<UInt8>) throws(TaskStoreError) {
        let parsed: JSONValue
        do {
            parsed = try JSONValue(json: json)
        } catch {
            throw .invalidResultMeta("not valid JSON")
        }
        guard case .object(let fields) = parsed else { throw .invalidResultMeta("not a JSON object") }
        guard let status = fields["status"]?.stringValue else { throw .invalidResultMeta("no string 'status'") }
        let children: [JSONValue]
        if case .array(let list)? = fields["children"] { children = list } else { children = [] }
        var extended: Extended?
        if fields["name"] != nil || fields["worker"] != nil || fields["queue"] != nil {
            extended = Extended(
                name: fields["name"]?.stringValue, args: fields["args"].flatMap { $0.isNull ? nil : $0 },
                kwargs: fields["kwargs"].flatMap { $0.isNull ? nil : $0 }, worker: fields["worker"]?.stringValue,
                retries: fields["retries"]?.intValue.map { Int($0) }, queue: fields["queue"]?.stringValue)
        }
        self.init(
            taskID: fields["task_id"]?.stringValue ?? "", status: status, result: fields["result"] ?? .null,
            traceback: fields["traceback"]?.stringValue, children: children, dateDone: fields["date_done"]?.stringValue,
            groupID: fields["group_id"]?.stringValue, parentID: fields["parent_id"]?.stringValue, extended: extended)
    }
}

extension TaskStatus {
    /// The status as one JSON object, the shape `conveyor status --json` prints and the HTTP gateway's
    /// `GET /tasks/{id}` answers: `id`, `state`, `attempts`, `retries`, `source` (`task-record`, `celery-result` or
    /// `none`), and whichever of `name`, `queue`, `worker`, `reason`, `lease_owner`, `lease_until_ms`,
    /// `received_ms`, `started_ms`, `finished_ms`, `progress` (`fraction`, `message`, `current`, `total`) and
    /// `error` (`type`, `message`) are known.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "state": .string(state.rawValue),
            "attempts": .int(Int64(attempts)), "retries": .int(Int64(retries)),
            "source": .string(source.name),
        ]
        object["name"] = name.map(JSONValue.string)
        object["queue"] = queue.map(JSONValue.string)
        object["worker"] = worker.map(JSONValue.string)
        object["reason"] = reason.map(JSONValue.string)
        object["lease_owner"] = leaseOwner.map(JSONValue.string)
        object["lease_until_ms"] = leaseUntilMs.map(JSONValue.int)
        object["received_ms"] = receivedMs.map(JSONValue.int)
        object["started_ms"] = startedMs.map(JSONValue.int)
        object["finished_ms"] = finishedMs.map(JSONValue.int)
        if let progress {
            var fields: [String: JSONValue] = ["fraction": .double(progress.fraction)]
            fields["message"] = progress.message.map(JSONValue.string)
            fields["current"] = progress.current.map(JSONValue.double)
            fields["total"] = progress.total.map(JSONValue.double)
            object["progress"] = .object(fields)
        }
        if let error {
            object["error"] = .object(["type": .string(error.type), "message": .string(error.message)])
        }
        return .object(object)
    }
}

extension TaskStatus.Source {
    /// `task-record`, `celery-result` or `none`.
    public var name: String {
        switch self {
        case .taskRecord: "task-record"
        case .celeryResult: "celery-result"
        case .none: "none"
        }
    }
}

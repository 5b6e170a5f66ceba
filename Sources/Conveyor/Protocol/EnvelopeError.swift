/// Why a message is not a task envelope Conveyor can run. Each case is recorded as the dead-letter reason.
public enum EnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Only `application/json` is accepted (Celery's default serializer); pickle is never run.
    case unsupportedContentType(String)
    case unsupportedContentEncoding(String)
    /// A header the protocol requires (`task`, `id`) is missing.
    case missingHeader(String)
    /// A header is present but has the wrong type or format.
    case invalidHeader(name: String, reason: String)
    /// The body is not `[args, kwargs, embed]` JSON.
    case malformedBody(String)
    /// A Celery protocol v1 message (task fields in the body, no `task` header).
    case protocolVersion1
    /// The body is larger than the worker's configured limit.
    case payloadTooLarge(size: Int, limit: Int)

    public var description: String {
        switch self {
        case .unsupportedContentType(let type):
            return "unsupported content type '\(type)': Conveyor accepts application/json (set task_serializer='json')"
        case .unsupportedContentEncoding(let encoding):
            return "unsupported content encoding '\(encoding)': expected utf-8"
        case .missingHeader(let name):
            return "missing header '\(name)'"
        case .invalidHeader(let name, let reason):
            return "invalid header '\(name)': \(reason)"
        case .malformedBody(let reason):
            return "malformed body: \(reason)"
        case .protocolVersion1:
            return "Celery message protocol v1 is not supported: send protocol v2 (Celery ≥ 4 default)"
        case .payloadTooLarge(let size, let limit):
            return "payload of \(size) bytes exceeds the limit of \(limit) bytes"
        }
    }
}

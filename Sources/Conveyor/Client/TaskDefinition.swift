/// A task as producers and workers share it: its registered name and its input and output types.
///
/// Define one type per task and use it on both sides; the worker attaches the implementation.
///
/// ```swift
/// enum Resize: TaskDefinition {
///     static let name = "images.resize"
///     struct Input: Codable, Sendable { var url: String; var width: Int }
///     typealias Output = String
/// }
/// let ref = try await client.submit(Resize.self, .init(url: u, width: 256), options: .init(queue: "images"))
/// ```
///
/// The input travels as the message's kwargs: `Input` encoded as a JSON object. ``argumentNames`` names Celery's
/// positional args, so a Python caller's `send_task("examples.add", args=[2, 3])` maps to the same input.
public protocol TaskDefinition: Sendable {
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable

    /// The registered task name, e.g. `images.resize`.
    static var name: String { get }
    /// The input field each positional argument stands for, in order (`["a", "b"]` for `examples.add(a, b)`);
    /// empty by default (positional arguments are then refused).
    static var argumentNames: [String] { get }
    /// Options used when ``ConveyorClient/submit(_:_:options:)`` is given none.
    static var defaultOptions: TaskOptions { get }
}

extension TaskDefinition {
    public static var argumentNames: [String] { [] }
    public static var defaultOptions: TaskOptions { TaskOptions() }

    /// The input of a received envelope: its positional args mapped to ``argumentNames``, merged with its kwargs,
    /// decoded as `Input`.
    ///
    /// - Throws: ``TaskInputError`` naming the task and the field when an argument is missing, has the wrong type,
    ///   or is given both positionally and by name, or when there are more positional args than names.
    public static func decodeInput(from envelope: TaskEnvelope) throws(TaskInputError) -> Input {
        var fields = envelope.kwargs
        if envelope.args.count > argumentNames.count {
            throw TaskInputError(
                task: name, field: nil,
                reason: "got \(envelope.args.count) positional argument(s), the task names \(argumentNames.count)"
                    + (argumentNames.isEmpty ? "" : " (\(argumentNames.joined(separator: ", ")))"))
        }
        for (index, value) in envelope.args.enumerated() {
            let field = argumentNames[index]
            if fields[field] != nil {
                throw TaskInputError(task: name, field: field, reason: "given both positionally and by name")
            }
            fields[field] = value
        }
        do {
            return try JSONValue.object(fields).decode(as: Input.self)
        } catch let error as DecodingError {
            throw TaskInputError(decoding: error, task: name)
        } catch {
            throw TaskInputError(task: name, field: nil, reason: String(describing: error))
        }
    }

    /// `input` as the kwargs object it travels as.
    ///
    /// - Throws: ``TaskInputError`` when `Input` does not encode as a JSON object (or cannot be encoded).
    public static func encodeInput(_ input: Input) throws(TaskInputError) -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONValue(encoding: input)
        } catch {
            throw TaskInputError(task: name, field: nil, reason: "cannot encode the input: \(error)")
        }
        guard case .object(let fields) = value else {
            throw TaskInputError(task: name, field: nil, reason: "the input must encode as a JSON object (a struct)")
        }
        return fields
    }
}

/// A task's input could not be read from (or written as) its message.
public struct TaskInputError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The task name.
    public var task: String
    /// The input field at fault (a dotted path for nested fields), if one is.
    public var field: String?
    public var reason: String

    public init(task: String, field: String?, reason: String) {
        self.task = task
        self.field = field
        self.reason = reason
    }

    init(decoding error: DecodingError, task: String) {
        func path(_ context: DecodingError.Context, appending key: (any CodingKey)? = nil) -> String? {
            let keys = context.codingPath + (key.map { [$0] } ?? [])
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? nil : text
        }
        switch error {
        case .typeMismatch(let type, let context):
            self.init(task: task, field: path(context), reason: "expected \(type): \(context.debugDescription)")
        case .valueNotFound(let type, let context):
            self.init(task: task, field: path(context), reason: "expected \(type), got null")
        case .keyNotFound(let key, let context):
            self.init(task: task, field: path(context, appending: key), reason: "missing")
        case .dataCorrupted(let context):
            self.init(task: task, field: path(context), reason: context.debugDescription)
        @unknown default:
            self.init(task: task, field: nil, reason: String(describing: error))
        }
    }

    public var description: String {
        "invalid input for task '\(task)'" + (field.map { ", field '\($0)'" } ?? "") + ": \(reason)"
    }
}

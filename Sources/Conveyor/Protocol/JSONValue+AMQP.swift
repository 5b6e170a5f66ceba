import ConveyorAMQP
import Foundation

/// JSON values as AMQP field-table values and back: Celery's headers travel in the message's headers table.
extension JSONValue {
    /// The AMQP value kombu would write for this JSON value (`null` becomes `void`, objects become tables).
    public var amqpValue: AMQPValue {
        switch self {
        case .null: .void
        case .bool(let value): .bool(value)
        case .int(let value): .int(value)
        case .double(let value): .double(value)
        case .string(let value): .string(value)
        case .array(let values): .array(values.map(\.amqpValue))
        case .object(let fields): .table(AMQPTable(fields.mapValues(\.amqpValue)))
        }
    }

    /// The JSON value a received AMQP value stands for. Byte strings are read as UTF-8 text (kombu sends strings
    /// that way from some clients) and timestamps as Celery's ISO 8601 text, since JSON has neither.
    public init(amqpValue: AMQPValue) {
        switch amqpValue {
        case .void: self = .null
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .bytes(let value): self = .string(String(decoding: value, as: UTF8.self))
        case .timestamp(let date): self = .string(CeleryDate.format(date))
        case .array(let values): self = .array(values.map(JSONValue.init(amqpValue:)))
        case .table(let table): self = .object(table.fields.mapValues(JSONValue.init(amqpValue:)))
        }
    }
}

extension AMQPTable {
    /// A headers table holding `headers` (e.g. ``TaskEnvelope/celeryHeaders``).
    public init(json headers: [String: JSONValue]) {
        self.init(headers.mapValues(\.amqpValue))
    }

    /// The table's fields as JSON values, as ``TaskEnvelope/init(celeryHeaders:body:contentType:contentEncoding:replyTo:priority:maxBodySize:)``
    /// reads them.
    public var jsonFields: [String: JSONValue] {
        fields.mapValues(JSONValue.init(amqpValue:))
    }
}

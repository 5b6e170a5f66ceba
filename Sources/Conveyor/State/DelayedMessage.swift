import Foundation

/// A message waiting in the delay set (`P delayed:msg`) until it is due, then published to RabbitMQ as it is.
///
/// Stored as compact JSON text (docs/PROTOCOL.md, "Delayed messages"):
///
/// ```json
/// {"v":1,"exchange":"","routing_key":"images","properties":{"content_type":"application/json",
///  "content_encoding":"utf-8","correlation_id":"<id>","delivery_mode":2,"priority":5,"reply_to":"…"},
///  "headers":{"task":"images.resize","id":"<id>","retries":1,…},"body":"[[], {…}, {…}]","body_encoding":"utf-8"}
/// ```
///
/// `body` is the message body as text when it is UTF-8 (`body_encoding` `utf-8`, Celery's JSON), else base64
/// (`body_encoding` `base64`). Absent properties are left out.
public struct DelayedMessage: Sendable, Hashable {
    /// The exchange to publish to; `""` is the default exchange (routing key = queue name).
    public var exchange: String
    public var routingKey: String
    public var properties: Properties
    /// The AMQP headers table, as JSON values.
    public var headers: [String: JSONValue]
    public var body: [UInt8]

    /// The AMQP basic properties a task message carries.
    public struct Properties: Sendable, Hashable {
        public var contentType: String?
        public var contentEncoding: String?
        public var correlationID: String?
        public var replyTo: String?
        public var priority: UInt8?
        /// 2 is persistent, what Conveyor and Celery publish.
        public var deliveryMode: UInt8?

        /// The properties of a persistent JSON task message.
        public init(
            contentType: String? = "application/json", contentEncoding: String? = "utf-8",
            correlationID: String? = nil, replyTo: String? = nil, priority: UInt8? = nil, deliveryMode: UInt8? = 2
        ) {
            self.contentType = contentType
            self.contentEncoding = contentEncoding
            self.correlationID = correlationID
            self.replyTo = replyTo
            self.priority = priority
            self.deliveryMode = deliveryMode
        }
    }

    /// The format version written in `v`; readers reject versions they do not know.
    public static let formatVersion: Int64 = 1

    /// A message to publish to `exchange` with `routingKey`.
    public init(
        exchange: String = "", routingKey: String, properties: Properties = Properties(),
        headers: [String: JSONValue] = [:], body: [UInt8]
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.headers = headers
        self.body = body
    }

    /// The message Celery's protocol v2 publishes for `envelope` to `queue` through the default exchange.
    ///
    /// - Throws: `EncodingError` when an argument cannot be written as JSON (a non-finite Double).
    public init(envelope: TaskEnvelope, queue: String) throws {
        self.init(
            routingKey: queue,
            properties: Properties(
                correlationID: envelope.id, replyTo: envelope.replyTo, priority: envelope.priority),
            headers: envelope.celeryHeaders, body: Array(try envelope.celeryBody()))
    }

    /// The stored JSON text.
    public func jsonBytes() -> [UInt8] {
        var writer = JSONWriter(style: .compact, capacity: body.count + 512)
        writer.raw(#"{"v":1,"exchange":"#)
        writer.string(exchange)
        writer.raw(#","routing_key":"#)
        writer.string(routingKey)
        writer.raw(#","properties":{"#)
        var first = true
        func member(_ name: StaticString, _ write: (inout JSONWriter) -> Void) {
            if !first { writer.separator() }
            first = false
            writer.key(name)
            write(&writer)
        }
        if let value = properties.contentType { member("content_type") { $0.string(value) } }
        if let value = properties.contentEncoding { member("content_encoding") { $0.string(value) } }
        if let value = properties.correlationID { member("correlation_id") { $0.string(value) } }
        if let value = properties.deliveryMode { member("delivery_mode") { $0.int(Int64(value)) } }
        if let value = properties.priority { member("priority") { $0.int(Int64(value)) } }
        if let value = properties.replyTo { member("reply_to") { $0.string(value) } }
        writer.raw(#"},"headers":"#)
        writer.object(headers)
        writer.raw(#","body":"#)
        if let text = String(validating: body, as: UTF8.self) {
            writer.string(text)
            writer.raw(#","body_encoding":"utf-8"}"#)
        } else {
            writer.string(Data(body).base64EncodedString())
            writer.raw(#","body_encoding":"base64"}"#)
        }
        return writer.bytes
    }

    /// Reads a stored message.
    ///
    /// - Throws: ``TaskStoreError/invalidDelayedMessage(_:)`` naming what is missing or of the wrong type.
    public init(json: some Collection<UInt8>) throws(TaskStoreError) {
        let parsed: JSONValue
        do {
            parsed = try JSONValue(json: json)
        } catch {
            throw .invalidDelayedMessage("not valid JSON")
        }
        guard case .object(let fields) = parsed else { throw .invalidDelayedMessage("not a JSON object") }
        guard fields["v"]?.intValue == Self.formatVersion else {
            throw .invalidDelayedMessage("unknown format version \(fields["v"].map { "\($0)" } ?? "(none)")")
        }
        guard let routingKey = fields["routing_key"]?.stringValue else {
            throw .invalidDelayedMessage("no string 'routing_key'")
        }
        guard let bodyText = fields["body"]?.stringValue else { throw .invalidDelayedMessage("no string 'body'") }
        let body: [UInt8]
        switch fields["body_encoding"]?.stringValue ?? "utf-8" {
        case "utf-8": body = Array(bodyText.utf8)
        case "base64":
            guard let data = Data(base64Encoded: bodyText) else {
                throw .invalidDelayedMessage("'body' is not base64")
            }
            body = Array(data)
        case let other: throw .invalidDelayedMessage("unknown body_encoding '\(other)'")
        }
        var properties = Properties(contentType: nil, contentEncoding: nil, deliveryMode: nil)
        if case .object(let values)? = fields["properties"] {
            properties.contentType = values["content_type"]?.stringValue
            properties.contentEncoding = values["content_encoding"]?.stringValue
            properties.correlationID = values["correlation_id"]?.stringValue
            properties.replyTo = values["reply_to"]?.stringValue
            properties.priority = values["priority"]?.intValue.flatMap { UInt8(exactly: $0) }
            properties.deliveryMode = values["delivery_mode"]?.intValue.flatMap { UInt8(exactly: $0) }
        }
        var headers: [String: JSONValue] = [:]
        if case .object(let values)? = fields["headers"] { headers = values }
        self.init(
            exchange: fields["exchange"]?.stringValue ?? "", routingKey: routingKey, properties: properties,
            headers: headers, body: body)
    }

    /// The task envelope the message carries.
    ///
    /// - Throws: ``EnvelopeError`` as ``TaskEnvelope/init(celeryHeaders:body:contentType:contentEncoding:replyTo:priority:maxBodySize:)``.
    public func envelope() throws(EnvelopeError) -> TaskEnvelope {
        try TaskEnvelope(
            celeryHeaders: headers, body: body, contentType: properties.contentType,
            contentEncoding: properties.contentEncoding, replyTo: properties.replyTo, priority: properties.priority)
    }
}

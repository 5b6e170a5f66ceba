import CRabbitMQ
import Foundation

/// Builds C copies of Swift values (strings, tables, properties) in an `amqp_pool_t`.
///
/// `amqp_cstring_bytes` on a Swift `String` would point into a temporary buffer that dies before rabbitmq-c
/// reads it; copying into the connection's pool keeps every byte alive until the pool is recycled after the pass.
///
/// - Important: used only on the connection's thread, which owns the pool.
struct PoolEncoder {
    let pool: UnsafeMutablePointer<amqp_pool_t>

    private func allocate(_ count: Int) throws(AMQPError) -> UnsafeMutableRawPointer {
        guard let memory = amqp_pool_alloc(pool, count) else {
            throw .invalidArgument("out of memory encoding \(count) bytes")
        }
        return memory
    }

    func bytes(_ string: String) throws(AMQPError) -> amqp_bytes_t {
        let count = string.utf8.count
        guard count > 0 else { return amqp_empty_bytes }
        let memory = try allocate(count)
        var string = string
        string.withUTF8 { utf8 in
            UnsafeMutableRawBufferPointer(start: memory, count: count).copyMemory(from: .init(utf8))
        }
        return amqp_bytes_t(len: count, bytes: memory)
    }

    func bytes(_ array: [UInt8]) throws(AMQPError) -> amqp_bytes_t {
        let count = array.count
        guard count > 0 else { return amqp_empty_bytes }
        let memory = try allocate(count)
        array.withUnsafeBytes { raw in UnsafeMutableRawBufferPointer(start: memory, count: count).copyMemory(from: raw)
        }
        return amqp_bytes_t(len: count, bytes: memory)
    }

    /// `table` as a C table, plus one more entry when `extra` is given (the publish-sequence stamp).
    func table(_ table: AMQPTable, extra: (key: String, value: AMQPValue)? = nil) throws(AMQPError) -> amqp_table_t {
        let count = table.count + (extra == nil ? 0 : 1)
        guard count > 0 else { return amqp_empty_table }
        let entries = try allocate(count * MemoryLayout<amqp_table_entry_t>.stride)
            .bindMemory(to: amqp_table_entry_t.self, capacity: count)
        var index = 0
        for (key, value) in table {
            (entries + index).initialize(to: amqp_table_entry_t(key: try bytes(key), value: try field(value)))
            index += 1
        }
        if let extra {
            (entries + index).initialize(
                to: amqp_table_entry_t(key: try bytes(extra.key), value: try field(extra.value)))
        }
        return amqp_table_t(num_entries: Int32(count), entries: entries)
    }

    func field(_ value: AMQPValue) throws(AMQPError) -> amqp_field_value_t {
        var result = amqp_field_value_t()
        switch value {
        case .void:
            result.kind = UInt8(ascii: "V")
        case .bool(let flag):
            result.kind = UInt8(ascii: "t")
            result.value.boolean = flag ? 1 : 0
        case .int(let number):
            if let small = Int32(exactly: number) {
                result.kind = UInt8(ascii: "I")
                result.value.i32 = small
            } else {
                result.kind = UInt8(ascii: "l")
                result.value.i64 = number
            }
        case .double(let number):
            result.kind = UInt8(ascii: "d")
            result.value.f64 = number
        case .string(let text):
            result.kind = UInt8(ascii: "S")
            result.value.bytes = try bytes(text)
        case .bytes(let raw):
            result.kind = UInt8(ascii: "x")
            result.value.bytes = try bytes(raw)
        case .timestamp(let date):
            result.kind = UInt8(ascii: "T")
            result.value.u64 = UInt64(max(0, date.timeIntervalSince1970.rounded(.down)))
        case .array(let elements):
            result.kind = UInt8(ascii: "A")
            if elements.isEmpty {
                result.value.array = amqp_array_t(num_entries: 0, entries: nil)
            } else {
                let values = try allocate(elements.count * MemoryLayout<amqp_field_value_t>.stride)
                    .bindMemory(to: amqp_field_value_t.self, capacity: elements.count)
                for (index, element) in elements.enumerated() {
                    (values + index).initialize(to: try field(element))
                }
                result.value.array = amqp_array_t(num_entries: Int32(elements.count), entries: values)
            }
        case .table(let nested):
            result.kind = UInt8(ascii: "F")
            result.value.table = try table(nested)
        }
        return result
    }

    /// The C properties of `properties`; `publishSequence` adds the header that correlates a basic.return.
    func properties(
        _ properties: AMQPProperties, publishSequence: UInt64?
    ) throws(AMQPError)
        -> amqp_basic_properties_t
    {
        var c = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let value = properties.contentType {
            flags |= PropertyFlag.contentType
            c.content_type = try bytes(value)
        }
        if let value = properties.contentEncoding {
            flags |= PropertyFlag.contentEncoding
            c.content_encoding = try bytes(value)
        }
        if let publishSequence {
            flags |= PropertyFlag.headers
            c.headers = try table(
                properties.headers,
                extra: (key: publishSequenceHeader, value: .int(Int64(truncatingIfNeeded: publishSequence))))
        } else if !properties.headers.isEmpty {
            flags |= PropertyFlag.headers
            c.headers = try table(properties.headers)
        }
        if let value = properties.deliveryMode {
            flags |= PropertyFlag.deliveryMode
            c.delivery_mode = value.rawValue
        }
        if let value = properties.priority {
            flags |= PropertyFlag.priority
            c.priority = value
        }
        if let value = properties.correlationId {
            flags |= PropertyFlag.correlationId
            c.correlation_id = try bytes(value)
        }
        if let value = properties.replyTo {
            flags |= PropertyFlag.replyTo
            c.reply_to = try bytes(value)
        }
        if let value = properties.expiration {
            flags |= PropertyFlag.expiration
            c.expiration = try bytes(value)
        }
        if let value = properties.messageId {
            flags |= PropertyFlag.messageId
            c.message_id = try bytes(value)
        }
        if let value = properties.timestamp {
            flags |= PropertyFlag.timestamp
            c.timestamp = UInt64(max(0, value.timeIntervalSince1970.rounded(.down)))
        }
        if let value = properties.type {
            flags |= PropertyFlag.type
            c.type = try bytes(value)
        }
        if let value = properties.userId {
            flags |= PropertyFlag.userId
            c.user_id = try bytes(value)
        }
        if let value = properties.appId {
            flags |= PropertyFlag.appId
            c.app_id = try bytes(value)
        }
        c._flags = flags
        return c
    }
}

/// The header stamped on `mandatory` publishes: a basic.return carries no delivery tag, so the client finds the
/// returned message's publish record by this value (the .NET client does the same).
let publishSequenceHeader = "x-conveyor-publish-seq"

/// Bits of `amqp_basic_properties_t._flags` (AMQP 0-9-1 basic class property flags).
enum PropertyFlag {
    static let contentType: UInt32 = 1 << 15
    static let contentEncoding: UInt32 = 1 << 14
    static let headers: UInt32 = 1 << 13
    static let deliveryMode: UInt32 = 1 << 12
    static let priority: UInt32 = 1 << 11
    static let correlationId: UInt32 = 1 << 10
    static let replyTo: UInt32 = 1 << 9
    static let expiration: UInt32 = 1 << 8
    static let messageId: UInt32 = 1 << 7
    static let timestamp: UInt32 = 1 << 6
    static let type: UInt32 = 1 << 5
    static let userId: UInt32 = 1 << 4
    static let appId: UInt32 = 1 << 3
}

import CRabbitMQ
import Foundation

/// Copies C values out of a frame into Swift values.
///
/// Frame memory lives in rabbitmq-c's channel pools and dies at `amqp_maybe_release_buffers`, so everything a
/// frame says is copied here, on the connection's thread, before the pass ends.
enum CDecoder {
    static func string(_ bytes: amqp_bytes_t) -> String {
        String(decoding: UnsafeRawBufferPointer(start: bytes.bytes, count: bytes.len), as: UTF8.self)
    }

    static func byteArray(_ bytes: amqp_bytes_t) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: bytes.bytes, count: bytes.len))
    }

    /// Whether `bytes` holds exactly the UTF-8 of `string` (lets the caller reuse an already decoded String).
    static func equals(_ bytes: amqp_bytes_t, _ string: inout String) -> Bool {
        string.withUTF8 { utf8 in
            guard utf8.count == bytes.len else { return false }
            guard let base = utf8.baseAddress, let other = bytes.bytes else { return utf8.count == 0 }
            return memcmp(base, other, bytes.len) == 0
        }
    }

    static func table(_ table: amqp_table_t) -> AMQPTable {
        guard table.num_entries > 0, let entries = table.entries else { return AMQPTable() }
        var fields = [String: AMQPValue](minimumCapacity: Int(table.num_entries))
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            fields[string(entry.key)] = value(entry.value)
        }
        return AMQPTable(fields)
    }

    static func value(_ field: amqp_field_value_t) -> AMQPValue {
        switch field.kind {
        case UInt8(ascii: "t"): .bool(field.value.boolean != 0)
        case UInt8(ascii: "b"): .int(Int64(field.value.i8))
        case UInt8(ascii: "B"): .int(Int64(field.value.u8))
        case UInt8(ascii: "s"): .int(Int64(field.value.i16))
        case UInt8(ascii: "u"): .int(Int64(field.value.u16))
        case UInt8(ascii: "I"): .int(Int64(field.value.i32))
        case UInt8(ascii: "i"): .int(Int64(field.value.u32))
        case UInt8(ascii: "l"): .int(field.value.i64)
        case UInt8(ascii: "L"): .int(Int64(clamping: field.value.u64))
        case UInt8(ascii: "f"): .double(Double(field.value.f32))
        case UInt8(ascii: "d"): .double(field.value.f64)
        case UInt8(ascii: "D"):
            .double(Double(field.value.decimal.value) / pow(10, Double(field.value.decimal.decimals)))
        case UInt8(ascii: "S"): .string(string(field.value.bytes))
        case UInt8(ascii: "x"): .bytes(byteArray(field.value.bytes))
        case UInt8(ascii: "T"): .timestamp(Date(timeIntervalSince1970: Double(field.value.u64)))
        case UInt8(ascii: "F"): .table(table(field.value.table))
        case UInt8(ascii: "A"):
            .array(
                (0..<Int(field.value.array.num_entries)).compactMap { index in
                    field.value.array.entries.map { value($0[index]) }
                })
        default: .void
        }
    }

    /// `bytes` as a String, reusing `last` when the bytes are the same (most messages of a queue share their
    /// content type and encoding, and a String over 15 bytes costs an allocation).
    static func string(_ bytes: amqp_bytes_t, reusing last: inout String) -> String {
        if !equals(bytes, &last) { last = string(bytes) }
        return last
    }

    static func properties(_ c: amqp_basic_properties_t, cache: inout PropertyStringCache) -> AMQPProperties {
        let flags = c._flags
        func has(_ flag: UInt32) -> Bool { flags & flag != 0 }
        return AMQPProperties(
            contentType: has(PropertyFlag.contentType) ? string(c.content_type, reusing: &cache.contentType) : nil,
            contentEncoding: has(PropertyFlag.contentEncoding)
                ? string(c.content_encoding, reusing: &cache.contentEncoding) : nil,
            headers: has(PropertyFlag.headers) ? table(c.headers) : AMQPTable(),
            deliveryMode: has(PropertyFlag.deliveryMode) ? AMQPDeliveryMode(rawValue: c.delivery_mode) : nil,
            priority: has(PropertyFlag.priority) ? c.priority : nil,
            correlationId: has(PropertyFlag.correlationId) ? string(c.correlation_id) : nil,
            replyTo: has(PropertyFlag.replyTo) ? string(c.reply_to) : nil,
            expiration: has(PropertyFlag.expiration) ? string(c.expiration) : nil,
            messageId: has(PropertyFlag.messageId) ? string(c.message_id) : nil,
            timestamp: has(PropertyFlag.timestamp) ? Date(timeIntervalSince1970: Double(c.timestamp)) : nil,
            type: has(PropertyFlag.type) ? string(c.type) : nil,
            userId: has(PropertyFlag.userId) ? string(c.user_id) : nil,
            appId: has(PropertyFlag.appId) ? string(c.app_id) : nil
        )
    }
}

/// The last content type and encoding a channel received, reused while they repeat.
struct PropertyStringCache {
    var contentType = ""
    var contentEncoding = ""
}

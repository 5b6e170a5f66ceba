import Conveyor
import Foundation

/// A task's output as the JSON stored in its result.
enum ResultEncoding {
    /// - Throws: `EncodingError` for a value JSON cannot hold (a non-finite `Double`, say).
    static func json<Output: Encodable>(_ output: Output) throws -> [UInt8] {
        // The common results skip JSONEncoder, which costs more than the rest of a small task's bookkeeping.
        switch output {
        case let value as JSONValue: return value.jsonBytes()
        case let value as Int: return JSONValue.int(Int64(value)).jsonBytes()
        case let value as Int64: return JSONValue.int(value).jsonBytes()
        case let value as String: return JSONValue.string(value).jsonBytes()
        case let value as Bool: return JSONValue.bool(value).jsonBytes()
        case let value as Double where value.isFinite: return JSONValue.double(value).jsonBytes()
        default: break
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(output))
    }
}

import Conveyor
import Foundation

/// A task's output as the JSON stored in its result.
enum ResultEncoding {
    /// - Throws: `EncodingError` for a value JSON cannot hold (a non-finite `Double`, say).
    static func json<Output: Encodable>(_ output: Output) throws -> [UInt8] {
        if let value = output as? JSONValue { return value.jsonBytes() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(output))
    }
}

import Foundation
import Testing

@testable import Conveyor

@Suite("Decoding Codable types from JSONValue (no server)")
struct JSONValueDecoderTests {
    struct Inner: Codable, Equatable {
        var name: String
        var tags: [String]
    }
    struct Input: Codable, Equatable {
        var count: Int
        var ratio: Double
        var small: UInt8
        var flag: Bool
        var note: String?
        var inner: Inner
        var matrix: [[Int]]
        var url: URL
        var raw: JSONValue
        var optionalList: [Int?]
    }

    @Test("decodes what JSONDecoder decodes from the same text")
    func agreesWithJSONDecoder() throws {
        let text = #"""
            {"count": 3, "ratio": 2, "small": 255, "flag": true, "note": null,
             "inner": {"name": "n", "tags": ["a", "b"]}, "matrix": [[1], [2, 3], []],
             "url": "https://example.com/x", "raw": {"any": [1, "two"]}, "optionalList": [1, null, 3]}
            """#
        let value = try JSONValue(json: Array(text.utf8))
        let ours = try value.decode(as: Input.self)
        let foundations = try JSONDecoder().decode(Input.self, from: Data(text.utf8))
        #expect(ours == foundations)
        #expect(ours.ratio == 2.0)
        #expect(try JSONValue.double(4.0).decode(as: Int.self) == 4)
        #expect(try JSONValue.null.decode(as: Int?.self) == nil)
    }

    @Test("errors name the field and what was expected, as DecodingError")
    func errorsNameTheField() {
        let wrongType: JSONValue = ["count": "three"]
        do {
            _ = try wrongType.decode(as: Input.self)
            Issue.record("decoded")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["count"])
        } catch {
            Issue.record("unexpected \(error)")
        }
        let nested: JSONValue = ["inner": ["name": "n", "tags": ["a", 2]]]
        struct Outer: Decodable { var inner: Inner }
        do {
            _ = try nested.decode(as: Outer.self)
            Issue.record("decoded")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["inner", "tags", "1"])
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(throws: DecodingError.self) { try JSONValue.int(256).decode(as: UInt8.self) }
        #expect(throws: DecodingError.self) { try JSONValue.double(1.5).decode(as: Int.self) }
        #expect(throws: DecodingError.self) { try JSONValue.object([:]).decode(as: Inner.self) }
    }
}

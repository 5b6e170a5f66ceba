import Foundation
import Testing

@testable import Conveyor

@Suite("JSON parser (no server)")
struct JSONParserTests {
    @Test("parses what JSONSerialization parses, to the same values")
    func agreesWithFoundation() throws {
        let text = #"""
            {"a": [1, -2, 3.5, 1e3, -0.25E-2, 9223372036854775807, 9223372036854775808],
             "s": "caf\u00e9 \"q\" \\ \/ \b\f\n\r\t \ud83d\ude00 ünï", "t": true, "f": false, "n": null,
             "o": {"nested": [[], {}]}, "": ""}
            """#
        let value = try JSONValue(json: Array(text.utf8))
        guard case .object(let fields) = value else {
            Issue.record("not an object: \(value)")
            return
        }
        #expect(fields["a"] == [1, -2, 3.5, 1000.0, -0.0025, .int(Int64.max), .double(9223372036854775808.0)])
        #expect(fields["s"] == .string("café \"q\" \\ / \u{8}\u{c}\n\r\t 😀 ünï"))
        #expect(fields["t"] == true)
        #expect(fields["f"] == false)
        #expect(fields["n"] == .null)
        #expect(fields["o"] == ["nested": [[], [:]]])
        #expect(fields[""] == "")
        // The writer's output parses back to the same value.
        #expect(try JSONValue(json: value.jsonBytes()) == value)
    }

    @Test(
        "refuses what is not JSON, saying where",
        arguments: [
            "", "[1,]", "{\"a\":1,}", "01", "1.", "-", "1e", "[1 2]", "{\"a\" 1}", "{a:1}", "\"unterminated",
            "\"bad \\x escape\"", "\"\\ud800 lone\"", "tru", "nul", "[1]x", "\"tab\tinside\"",
        ])
    func refusesInvalid(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(json: Array(text.utf8)) }
    }

    @Test("refuses invalid UTF-8 and nesting deeper than 512 levels")
    func refusesHostileInput() {
        #expect(throws: JSONParseError.self) { try JSONValue(json: [0x22, 0xFF, 0xFE, 0x22]) }
        let deep =
            Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue(json: deep) }
        let fine = Array(repeating: UInt8(ascii: "["), count: 500) + Array(repeating: UInt8(ascii: "]"), count: 500)
        #expect((try? JSONValue(json: fine)) != nil)
    }
}

@Suite("Task ids (no server)")
struct TaskIDTests {
    @Test("ids are lowercase version 4 UUIDs that Foundation parses, and distinct")
    func ids() {
        var seen = Set<String>()
        for _ in 0..<1_000 {
            let id = TaskID.make()
            #expect(id.count == 36)
            #expect(id == id.lowercased())
            let uuid = UUID(uuidString: id)
            #expect(uuid != nil)
            #expect(uuid?.uuidString.lowercased() == id)
            let scalars = Array(id.utf8)
            #expect(scalars[14] == UInt8(ascii: "4"))
            #expect([UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a"), UInt8(ascii: "b")].contains(scalars[19]))
            seen.insert(id)
        }
        #expect(seen.count == 1_000)
    }
}

import Foundation
import Testing

@testable import Conveyor

@Suite("State codecs (no server)")
struct StateCodecTests {
    @Test(
        "the millisecond ISO formatter writes what CeleryDate.format writes",
        arguments: [
            0, 1, 999, 1_000, 86_399_999, 951_782_400_000, 1_700_000_000_123, 1_800_000_000_000, 4_102_444_799_999,
            -1, -86_400_001,
        ] as [Int64])
    func isoMatchesCeleryDate(ms: Int64) {
        #expect(MillisecondClock.iso(ms) == CeleryDate.format(MillisecondClock.date(ms)))
    }

    @Test("the fixture's metas parse: value, failure, date")
    func parsesFixture() throws {
        let fixture = try StateRecordTests.fixture()
        let success = try CeleryResultMeta(json: try #require(fixture["success"]).jsonData())
        #expect(success.state == .success)
        #expect(success.result == 5)
        #expect(success.taskID == "7525eb96-b810-4e28-b6d4-51f409f0da7f")
        #expect(success.dateDoneValue != nil)
        #expect(success.failure == nil)
        let failure = try CeleryResultMeta(json: try #require(fixture["failure"]).jsonData())
        #expect(failure.failure == TaskFailure(type: "MyErr", message: "boom"))
        #expect(failure.traceback?.hasPrefix("Traceback") == true)
    }

    @Test("a meta round-trips through its JSON, extended fields included")
    func metaRoundTrip() throws {
        let meta = CeleryResultMeta(
            taskID: "id-1", status: "SUCCESS", result: ["a": [1, 2.5, nil, "x\u{1}y"], "b": true],
            dateDone: "2026-01-02T03:04:05.123000+00:00", groupID: "g", parentID: "p",
            extended: .init(name: "n", args: [1], kwargs: ["k": "v"], worker: "w", retries: 2, queue: "q"))
        #expect(try CeleryResultMeta(json: meta.jsonBytes()) == meta)
        #expect(throws: TaskStoreError.self) { try CeleryResultMeta(json: Array("[1]".utf8)) }
        #expect(throws: TaskStoreError.self) { try CeleryResultMeta(json: Array("{".utf8)) }
    }

    @Test("the JSON writer escapes what JSON requires and reads back equal")
    func writerEscapes() throws {
        let value: JSONValue = ["q\"uote": "back\\slash \u{0} \u{1f} tab\t é ✓", "n": [-5, 0, 1e-5, 12345678901234]]
        var writer = JSONWriter(style: .compact)
        writer.value(value)
        #expect(try JSONValue(json: writer.bytes) == value)
        var nan = JSONWriter()
        nan.double(.nan)
        #expect(nan.bytes == Array("null".utf8))
    }

    @Test("a delayed message round-trips, UTF-8 and binary bodies")
    func delayedMessageRoundTrip() throws {
        let message = try sampleMessage("abc", retries: 3)
        #expect(try DelayedMessage(json: message.jsonBytes()) == message)
        #expect(try message.envelope().retries == 3)
        #expect(message.properties.correlationID == "abc")
        var binary = message
        binary.body = [0xFF, 0x00, 0xFE]
        binary.properties.contentType = "application/octet-stream"
        #expect(try DelayedMessage(json: binary.jsonBytes()) == binary)
        #expect(throws: TaskStoreError.self) {
            try DelayedMessage(json: Array(#"{"v":2,"routing_key":"q","body":""}"#.utf8))
        }
    }

    @Test("RedisKeys follows Celery's global_keyprefix rule")
    func keys() {
        #expect(RedisKeys().result("x") == "celery-task-meta-x")
        #expect(RedisKeys(resultPrefix: "app").result("x") == "app_celery-task-meta-x")
        #expect(RedisKeys(resultPrefix: "app:").result("x") == "app:celery-task-meta-x")
        #expect(RedisKeys().task("x") == "conveyor:task:x")
        #expect(RedisKeys(prefix: "p/").state(.retry) == "p/state:RETRY")
    }

    @Test("TaskFailure from a Swift error: its type name and description")
    func failureFromError() {
        struct ImageError: Error, CustomStringConvertible {
            var description: String { "bad pixel" }
        }
        #expect(TaskFailure(ImageError()) == TaskFailure(type: "ImageError", message: "bad pixel"))
        let original = TaskFailure(type: "T", message: "m")
        #expect(TaskFailure(original as any Error) == original)
    }
}

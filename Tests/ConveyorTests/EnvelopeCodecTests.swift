import Foundation
import Testing

@testable import Conveyor

@Suite struct EnvelopeCodecTests {
    /// A message Celery 5.7 really sent (Fixtures/celery-5.7-send-task.json), read back from RabbitMQ.
    struct CapturedMessage: Decodable {
        var headers: [String: JSONValue]
        var properties: [String: JSONValue]
        var body: String
    }

    static func captured() throws -> CapturedMessage {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/celery-5.7-send-task.json")
        return try JSONDecoder().decode(CapturedMessage.self, from: Data(contentsOf: url))
    }

    @Test func decodesWhatCelerySends() throws {
        let message = try Self.captured()
        let envelope = try TaskEnvelope(
            celeryHeaders: message.headers, body: Array(message.body.utf8),
            contentType: message.properties["content_type"]?.stringValue,
            contentEncoding: message.properties["content_encoding"]?.stringValue,
            replyTo: message.properties["reply_to"]?.stringValue, priority: 5)
        #expect(envelope.task == "examples.add")
        #expect(envelope.id == message.headers["id"]?.stringValue)
        #expect(envelope.args == [2, 3])
        #expect(envelope.kwargs["a"] == 1)
        // kombu's wrappers arrive as their plain values.
        #expect(envelope.kwargs["when"] == "2024-01-02T03:04:05")
        #expect(envelope.kwargs["b"] == "hi")
        #expect(envelope.lang == "py")
        #expect(envelope.timeLimit == .init(hard: 30, soft: nil))
        #expect(envelope.retries == 0)
        let eta = try #require(envelope.eta)
        let expires = try #require(envelope.expires)
        #expect(abs(expires.timeIntervalSince(eta) - 50) < 0.001)
        #expect(envelope.kind == .task)
        // Celery's own extra headers are kept, not dropped.
        #expect(envelope.otherHeaders["stamps"] == .object([:]))
    }

    @Test func roundTripsEverything() throws {
        var original = TaskEnvelope(
            task: "images.resize", args: [1, "two", 3.5, nil, true], kwargs: ["url": "u", "width": 256],
            embed: ["chain": [["task": "next"]]], parentID: "p", group: "g", groupIndex: 2, retries: 3,
            eta: Date(timeIntervalSince1970: 1_700_000_000.25), expires: Date(timeIntervalSince1970: 1_700_000_100),
            timeLimit: .init(hard: 10, soft: 7.5), origin: "1@host", ignoreResult: true, shadow: "resize!",
            replyTo: "r", priority: 9)
        original.idempotencyKey = "k-1"
        original.kind = .stream
        let decoded = try TaskEnvelope(
            celeryHeaders: original.celeryHeaders, body: Array(original.celeryBody()),
            contentType: "application/json", contentEncoding: "utf-8", replyTo: "r", priority: 9)
        var expected = original
        expected.rootID = original.id
        expected.argsrepr = TaskEnvelope.repr(.array(original.args))
        expected.kwargsrepr = TaskEnvelope.repr(.object(original.kwargs))
        #expect(decoded == expected)
        #expect(decoded.idempotencyKey == "k-1")
        #expect(decoded.kind == .stream)
    }

    @Test func bodyIsCeleryShaped() throws {
        let envelope = TaskEnvelope(task: "examples.add", kwargs: ["a": 2, "b": 3])
        let body = try JSONValue(json: envelope.celeryBody())
        #expect(
            body == [[], ["a": 2, "b": 3], ["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil]])
        let headers = envelope.celeryHeaders
        #expect(headers["timelimit"] == [nil, nil])
        #expect(headers["root_id"] == .string(envelope.id))
        #expect(headers["lang"] == "swift")
    }

    @Test(arguments: [
        ("application/x-python-serialize", "utf-8", "[[], {}, {}]", "unsupported content type"),
        ("application/json", "binary", "[[], {}, {}]", "unsupported content encoding"),
        ("application/json", "utf-8", "not json", "not valid JSON"),
        ("application/json", "utf-8", "{\"args\": []}", "expected [args, kwargs, embed]"),
        ("application/json", "utf-8", "[{}, {}, {}]", "args must be an array"),
        ("application/json", "utf-8", "[[], [], {}]", "kwargs must be an object"),
    ])
    func rejectsBadMessages(contentType: String, encoding: String, body: String, reason: String) {
        #expect {
            _ = try TaskEnvelope(
                celeryHeaders: ["task": "t", "id": "1"], body: Array(body.utf8), contentType: contentType,
                contentEncoding: encoding)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func rejectsMissingAndInvalidHeaders() {
        let body = Array("[[], {}, {}]".utf8)
        #expect(throws: EnvelopeError.missingHeader("task")) {
            _ = try TaskEnvelope(celeryHeaders: ["id": "1"], body: body, contentType: nil, contentEncoding: nil)
        }
        #expect(throws: EnvelopeError.missingHeader("id")) {
            _ = try TaskEnvelope(celeryHeaders: ["task": "t"], body: body, contentType: nil, contentEncoding: nil)
        }
        #expect(throws: EnvelopeError.invalidHeader(name: "eta", reason: "expected an ISO 8601 date or null")) {
            _ = try TaskEnvelope(
                celeryHeaders: ["task": "t", "id": "1", "eta": "tomorrow"], body: body, contentType: nil,
                contentEncoding: nil)
        }
        #expect(throws: EnvelopeError.invalidHeader(name: "timelimit", reason: "expected [hard, soft]")) {
            _ = try TaskEnvelope(
                celeryHeaders: ["task": "t", "id": "1", "timelimit": 5], body: body, contentType: nil,
                contentEncoding: nil)
        }
        #expect(throws: EnvelopeError.protocolVersion1) {
            _ = try TaskEnvelope(
                celeryHeaders: [:], body: Array("{\"task\": \"t\", \"id\": \"1\"}".utf8), contentType: nil,
                contentEncoding: nil)
        }
        #expect(throws: EnvelopeError.payloadTooLarge(size: 12, limit: 4)) {
            _ = try TaskEnvelope(
                celeryHeaders: ["task": "t", "id": "1"], body: body, contentType: nil, contentEncoding: nil,
                maxBodySize: 4)
        }
    }

    @Test func datesParseAndFormatLikePython() throws {
        let date = try #require(CeleryDate.parse("2026-11-22T06:01:41.764433+00:00"))
        #expect(CeleryDate.format(date) == "2026-11-22T06:01:41.764433+00:00")
        #expect(CeleryDate.parse("2024-01-02T03:04:05") == CeleryDate.parse("2024-01-02T03:04:05Z"))
        #expect(CeleryDate.parse("2024-01-02T05:04:05+02:00") == CeleryDate.parse("2024-01-02T03:04:05Z"))
        #expect(CeleryDate.parse("2024-13-02T03:04:05") == nil)
        #expect(CeleryDate.parse("2024-01-02") == nil)
        #expect(CeleryDate.parse("2024-01-02T03:04:05+0") == nil)
    }
}

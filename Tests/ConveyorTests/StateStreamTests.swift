import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// The generators' scripts on their own: index-derived entry ids, replays, fencing, markers, the read position.
@Suite("State: generator streams")
struct StateStreamTests {
    static func items(_ values: [Int]) -> [[UInt8]] { values.map { Array("\($0)".utf8) } }

    @Test("items are entries 0-<index+1>; a replay adds nothing twice; a hole is refused")
    func appendIsIdempotent() async throws {
        try await StateFixture.with("stream-append") { f in
            let id = f.newID()
            let token = try await f.run(id)
            #expect(
                try await f.store.appendItems(id, token: token, firstIndex: 0, items: Self.items([0, 1, 2]))
                    == .appended(stored: 3, consumed: 0))
            // A run replayed from the start: 0-2 are skipped, 3 is new.
            #expect(
                try await f.store.appendItems(id, token: token, firstIndex: 0, items: Self.items([0, 1, 2, 3]))
                    == .appended(stored: 4, consumed: 0))
            #expect(
                try await f.store.appendItems(id, token: token, firstIndex: 6, items: Self.items([6]))
                    == .gap(stored: 4))
            let entries = try await f.client.xrange(f.keys.stream(id))
            #expect(entries.map(\.id) == ["0-1", "0-2", "0-3", "0-4"])
            #expect(entries.map { $0["item"].map { String(decoding: $0, as: UTF8.self) } } == ["0", "1", "2", "3"])
            let ttl = try await f.client.send(RedisCommand("TTL", f.keys.stream(id))).int ?? -1
            #expect(ttl > 0)
        }
    }

    @Test("a stale token writes nothing; the finish appends the marker with the count and records the state")
    func fencingAndFinish() async throws {
        try await StateFixture.with("stream-finish") { f in
            let id = f.newID()
            let stale = try await f.run(id, lease: .seconds(1))
            // The lease ran out and another worker claimed the task.
            let token = try await f.run(id, worker: "w2", now: StateFixture.t0 + 2_000)
            #expect(try await f.store.appendItems(id, token: stale, firstIndex: 0, items: Self.items([0])) == .fenced)
            _ = try await f.store.appendItems(id, token: token, firstIndex: 0, items: Self.items([0, 1]))
            #expect(
                try await f.store.finishStream(id, token: stale, outcome: .success(.int(2)), now: StateFixture.t0)
                    == .fenced)
            #expect(
                try await f.store.finishStream(id, token: token, outcome: .success(.int(2)), now: StateFixture.t0)
                    == .recorded)
            let entries = try await f.client.xrange(f.keys.stream(id))
            let marker = try #require(entries.last)
            #expect(marker.id == "0-3")
            #expect(marker["end"] == Array("SUCCESS".utf8))
            #expect(marker["count"] == Array("2".utf8))
            // Nothing can follow the marker.
            #expect(try await f.store.appendItems(id, token: token, firstIndex: 2, items: Self.items([2])) == .fenced)
            #expect(try await f.metaObject(id)?["result"] == 2)
            #expect(try await f.store.status(id).state == .success)
        }
    }

    @Test("a failure's marker carries the error after the items; its meta counts them")
    func failureMarker() async throws {
        try await StateFixture.with("stream-failure") { f in
            let id = f.newID()
            let token = try await f.run(id)
            _ = try await f.store.appendItems(id, token: token, firstIndex: 0, items: Self.items([0, 1, 2, 3, 4]))
            let failure = TaskFailure(type: "ExampleError", message: #"quote " and }, "traceback" inside"#)
            #expect(
                try await f.store.finishStream(id, token: token, outcome: .failure(failure), now: StateFixture.t0)
                    == .recorded)
            let marker = try #require(try await f.client.xrange(f.keys.stream(id)).last)
            #expect(marker.id == "0-6")
            #expect(marker["end"] == Array("FAILURE".utf8))
            #expect(marker["error_type"] == Array("ExampleError".utf8))
            #expect(marker["error_message"] == Array(failure.message.utf8))
            let meta = try #require(try await f.metaObject(id))
            #expect(meta["status"] == "FAILURE")
            guard case .object(let result)? = meta["result"] else { throw TestFailure("no result object: \(meta)") }
            #expect(result["items"] == 5)
            #expect(result["exc_message"] == [.string(failure.message)])
        }
    }

    @Test("the read position only moves forward and is published on its key's channel")
    func readPosition() async throws {
        try await StateFixture.with("stream-read") { f in
            let id = f.newID()
            let subscription = try await f.client.subscriber.subscribe([f.keys.streamRead(id)])
            defer { subscription.unsubscribe() }
            #expect(try await f.store.recordStreamRead(id, position: 7) == 7)
            #expect(try await f.store.recordStreamRead(id, position: 3) == 7)
            #expect(try await f.store.streamReadPosition(id) == 7)
            #expect(await firstMessage(subscription)?.string == "7")
        }
    }
}

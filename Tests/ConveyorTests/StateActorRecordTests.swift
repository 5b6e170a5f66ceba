import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

@Suite("ActorStore record: outcomes written together, fenced by the host")
struct StateActorRecordTests {
    static func meta(_ call: String, _ value: Int) -> [UInt8] {
        CeleryResultMeta(taskID: call, status: "SUCCESS", result: .int(Int64(value))).jsonBytes()
    }

    @Test("one script call records several outcomes, notifies each caller in order, and counts every call")
    func batch() async throws {
        try await StateFixture.with("actor-record") { f in
            let actors = ActorStore(redis: f.client, keys: f.keys)
            let id = f.newID()
            #expect(
                try await actors.spawn(
                    id: id, type: "T", options: ActorOptions(), arguments: .null, owner: "o") == .created)
            guard case .host = try await actors.host(id, host: "h1") else { throw TestFailure("not hosted") }
            let subscription = try await f.client.subscriber.subscribe([f.keys.notify("caller")])
            defer { subscription.unsubscribe() }

            let calls = (0..<3).map { "call-\($0)-\(f.newID())" }
            let outcomes = calls.enumerated().map { n, call in
                // The second call's caller asked for no notification.
                ActorStore.CallOutcome(call: call, meta: Self.meta(call, n * 10), replyTo: n == 1 ? "" : "caller")
            }
            #expect(try await actors.record(actor: id, host: "h1", outcomes: outcomes, snapshot: nil))

            for (n, call) in calls.enumerated() {
                let stored = try #require(try await f.metaObject(call), "outcome of \(call)")
                #expect(stored["result"] == .int(Int64(n * 10)))
            }
            var notified: [String] = []
            for await message in subscription {
                notified.append(message.string)
                if notified.count == 2 { break }
            }
            #expect(notified.map { String($0.prefix(while: { $0 != "\n" })) } == [calls[0], calls[2]])
            #expect(notified[0] == calls[0] + "\n" + String(decoding: Self.meta(calls[0], 0), as: UTF8.self))
            #expect(try await f.client.send(RedisCommand("HGET", f.keys.actor(id), "calls")).string == "3")
        }
    }

    @Test("a host that lost the actor writes nothing: no outcome, no snapshot, no count")
    func fenced() async throws {
        try await StateFixture.with("actor-record-fenced") { f in
            let actors = ActorStore(redis: f.client, keys: f.keys)
            let id = f.newID()
            _ = try await actors.spawn(
                id: id, type: "T", options: ActorOptions(maxRestarts: 1), arguments: .null, owner: "o")
            guard case .host = try await actors.host(id, host: "h1") else { throw TestFailure("not hosted") }
            // h1 died (as far as h2 knows): h2 takes the actor over.
            guard case .host = try await actors.host(id, host: "h2") else { throw TestFailure("not taken over") }
            let call = "call-\(f.newID())"
            let recorded = try await actors.record(
                actor: id, host: "h1", outcomes: [.init(call: call, meta: Self.meta(call, 1), replyTo: "")],
                snapshot: Array(#"{"n":1}"#.utf8))
            #expect(!recorded)
            #expect(try await f.client.get(f.keys.result(call)) == nil)
            #expect(try await f.client.get(f.keys.actorSnapshot(id)) == nil)
            #expect(try await f.client.send(RedisCommand("HGET", f.keys.actor(id), "calls")).string ?? "0" == "0")

            #expect(
                try await actors.record(
                    actor: id, host: "h2", outcomes: [.init(call: call, meta: Self.meta(call, 1), replyTo: "")],
                    snapshot: Array(#"{"n":1}"#.utf8)))
            #expect(try await f.client.getString(f.keys.actorSnapshot(id)) == #"{"n":1}"#)
            #expect(try await f.metaObject(call)?["result"] == .int(1))
        }
    }
}

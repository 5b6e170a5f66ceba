import ConveyorAMQP
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

@Suite("ConveyorClient: waiting on refs")
struct ClientWaitTests {
    @Test("wait(count: 2) of 3 returns ready and pending in input order")
    func waitTwoOfThree() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let refs = try await fixture.client.submitMany(
                Add.self, [.init(a: 0, b: 0), .init(a: 1, b: 1), .init(a: 2, b: 2)], options: .init(queue: queue))
            let (consumer, deliveries) = try await fixture.take(queue, count: 3)
            // Finish the last, then the first: ready must still come back in input order.
            for index in [2, 0] {
                let envelope = try ClientFixture.envelope(of: deliveries[index])
                let token = try await fixture.claim(envelope, queue: queue)
                _ = try await fixture.store.finish(
                    envelope.id, token: token, outcome: .success(.int(Int64(index))), replyTo: envelope.replyTo)
            }
            let (ready, pending) = try await fixture.client.wait(refs, count: 2, timeout: .seconds(10))
            #expect(ready.map(\.id) == [refs[0].id, refs[2].id])
            #expect(pending.map(\.id) == [refs[1].id])

            // Asking for all three ends at the timeout with what is ready; not an error.
            let (readyAll, pendingAll) = try await fixture.client.wait(refs, timeout: .seconds(2))
            #expect(readyAll.map(\.id) == [refs[0].id, refs[2].id])
            #expect(pendingAll.map(\.id) == [refs[1].id])
            for delivery in deliveries { _ = delivery.ack() }
            await consumer.cancel()
        }
    }

    @Test("a notification that carries the meta resolves the waiter with no read; one with the id alone is read")
    func notificationCarriesMeta() async throws {
        try await ClientFixture.with("notify-meta") { fixture in
            let queue = fixture.queue()
            let carried = try await fixture.client.submit(Add.self, .init(a: 1, b: 1), options: .init(queue: queue))
            let read = try await fixture.client.submit(Add.self, .init(a: 2, b: 2), options: .init(queue: queue))
            let channel = fixture.client.store.keys.notify(fixture.client.clientID)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let value = try await carried.get(timeout: .seconds(20))
                    #expect(value == 42)
                }
                group.addTask {
                    let value = try await read.get(timeout: .seconds(20))
                    #expect(value == 7)
                }
                try await fixture.awaitSubscribers(channel, count: 1)
                // Both gets must be waiting before the notifications go out: nothing is stored for `carried`, so a
                // get that starts after its notification would wait in vain (a real finish stores first).
                let deadline = ContinuousClock.now + .seconds(15)
                while Set(fixture.client.waiters.outstandingIDs) != [carried.id, read.id],
                    ContinuousClock.now < deadline
                {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(Set(fixture.client.waiters.outstandingIDs) == [carried.id, read.id])
                // Nothing is stored for `carried`: only the meta in the notification can give 42.
                let meta = CeleryResultMeta(taskID: carried.id, status: "SUCCESS", result: .int(42))
                var payload = Array(carried.id.utf8) + [UInt8(ascii: "\n")]
                payload += meta.jsonBytes()
                _ = try await fixture.client.redis.send(RedisCommand("PUBLISH", channel, payload))
                // For `read` the meta is stored and the notification names the id alone: the client reads it.
                let stored = CeleryResultMeta(taskID: read.id, status: "SUCCESS", result: .int(7))
                _ = try await fixture.client.redis.send(
                    RedisCommand("SET", fixture.client.store.keys.result(read.id), stored.jsonBytes(), "EX", 60))
                _ = try await fixture.client.redis.send(RedisCommand("PUBLISH", channel, read.id))
                try await group.waitForAll()
            }
            #expect(try await fixture.store.resultMeta(carried.id) == nil)
        }
    }

    @Test("a task that finishes while being waited for wakes the waiter")
    func finishWhileWaiting() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let ref = try await fixture.client.submit(Add.self, .init(a: 20, b: 22), options: .init(queue: queue))
            try await withThrowingTaskGroup(of: Int?.self) { group in
                // The test is about the wake-up, not speed: a generous budget keeps a full-suite sanitizer run (37
                // suites in parallel on 2 cores) from failing it for slowness alone.
                group.addTask { try await ref.get(timeout: .seconds(30)) }
                group.addTask {
                    // Only serve once the waiter is subscribed, so the result must come through the notification.
                    try await fixture.awaitSubscribers(
                        fixture.client.store.keys.notify(fixture.client.clientID), count: 1)
                    try await Task.sleep(for: .milliseconds(50))
                    try await fixture.serve(queue, count: 1) { envelope in
                        let input = try Add.decodeInput(from: envelope)
                        return .success(.int(Int64(input.a + input.b)))
                    }
                    return nil
                }
                var outputs: [Int] = []
                for try await output in group { if let output { outputs.append(output) } }
                #expect(outputs == [42])
            }
        }
    }

    @Test("1,000 outstanding refs resolve through one notification subscription")
    func thousandRefsOneSubscription() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let count = 1000
            let refs = try await fixture.client.submitMany(
                Add.self, (0..<count).map { Add.Input(a: $0, b: $0) }, options: .init(queue: queue))
            let channel = fixture.client.store.keys.notify(fixture.client.clientID)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let (ready, pending) = try await fixture.client.wait(refs, timeout: .seconds(60))
                    #expect(ready.map(\.id) == refs.map(\.id))
                    #expect(pending.isEmpty)
                }
                try await fixture.awaitSubscribers(channel, count: 1)
                try await fixture.serve(queue, count: count) { envelope in
                    let input = try Add.decodeInput(from: envelope)
                    return .success(.int(Int64(input.a + input.b)))
                }
                try await group.waitForAll()
            }
            #expect(try await fixture.subscriberCount(channel) == 1)
            for (index, ref) in refs.enumerated() where index % 100 == 0 {
                #expect(try await ref.get(timeout: .seconds(5)) == 2 * index)
            }
        }
    }

    @Test("a ref to another client's task resolves through the result channel, not a subscription per id")
    func foreignRefs() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let submitted = try await fixture.client.submitMany(
                Add.self, (0..<20).map { Add.Input(a: $0, b: 1) }, options: .init(queue: queue))
            let other = try await ConveyorClient.connect(ClientFixture.configuration(prefix: fixture.prefix))
            do {
                let refs = submitted.map { other.ref(id: $0.id, as: Int.self) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let (ready, pending) = try await other.wait(refs, timeout: .seconds(20))
                        #expect(ready.map(\.id) == refs.map(\.id))
                        #expect(pending.isEmpty)
                    }
                    try await Task.sleep(for: .milliseconds(200))
                    // Routed through one PSUBSCRIBE: no channel subscription per task.
                    #expect(try await fixture.subscriberCount(other.store.keys.result(refs[0].id)) == 0)
                    try await fixture.serve(queue, count: 20) { envelope in
                        let input = try Add.decodeInput(from: envelope)
                        return .success(.int(Int64(input.a + input.b)))
                    }
                    try await group.waitForAll()
                }
                #expect(try await refs[3].get(timeout: .seconds(5)) == 4)
            } catch {
                await other.close()
                throw error
            }
            await other.close()
        }
    }

    @Test("close fails pending gets with the closed error")
    func closeFailsWaiters() async throws {
        let prefix = TestServers.uniqueName("test-close") + ":"
        let client = try await ConveyorClient.connect(ClientFixture.configuration(prefix: prefix))
        let ref = client.ref(id: UUID().uuidString.lowercased(), as: Int.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: ConveyorError.closed) { try await ref.get(timeout: .seconds(20)) }
            }
            try await Task.sleep(for: .milliseconds(300))
            await client.close()
            try await group.waitForAll()
        }
    }
}

@Suite("ConveyorClient: results written by Celery workers")
struct ClientCeleryResultTests {
    @Test("with followCeleryResultChannels, a result Celery's backend writes (SET + PUBLISH, no notify) wakes get")
    func celeryWrittenResult() async throws {
        try await ClientFixture.with { fixture in
            var configuration = ClientFixture.configuration(prefix: fixture.prefix)
            configuration.followCeleryResultChannels = true
            let client = try await ConveyorClient.connect(configuration)
            do {
                let queue = fixture.queue()
                let ref = try await client.submit(Add.self, .init(a: 2, b: 3), options: .init(queue: queue))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let output = try await ref.get(timeout: .seconds(10))
                        #expect(output == 5)
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    // What celery.backends.redis does on a task's success: SET the meta, PUBLISH it on the key.
                    let key = client.store.keys.result(ref.id)
                    let meta =
                        #"{"status": "SUCCESS", "result": 5, "traceback": null, "children": [], "#
                        + #""date_done": "2026-01-01T00:00:00.000000", "task_id": "\#(ref.id)"}"#
                    _ = try await fixture.client.redis.send(RedisCommand("SET", key, meta, "EX", 60))
                    _ = try await fixture.client.redis.send(RedisCommand("PUBLISH", key, meta))
                    try await group.waitForAll()
                }
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        }
    }
}

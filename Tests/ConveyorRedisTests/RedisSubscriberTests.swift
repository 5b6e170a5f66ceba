import ConveyorIO
import ConveyorTestSupport
import Testing

@testable import ConveyorRedis

@Suite("Redis pub/sub")
struct RedisSubscriberTests {
    @Test("messages published on the shared connection arrive in order")
    func subscribeAndPublish() async throws {
        let client = try await RedisTest.client()
        let channel = TestServers.uniqueName("redis-pubsub")
        let subscription = try await client.subscriber.subscribe([channel])
        for index in 0..<200 {
            #expect(try await client.publish("message \(index)", to: channel) == 1)
        }
        let received = try await within(.seconds(10), "200 messages") {
            var received: [String] = []
            for await message in subscription {
                #expect(message.channel == channel)
                #expect(message.pattern == nil)
                received.append(message.string)
                if received.count == 200 { break }
            }
            return received
        }
        #expect(received == (0..<200).map { "message \($0)" })
        await client.close()
    }

    @Test("a pattern subscription receives every matching channel, with the pattern")
    func patternSubscribe() async throws {
        let client = try await RedisTest.client()
        let prefix = TestServers.uniqueName("redis-psub")
        let subscription = try await client.subscriber.psubscribe(["\(prefix):*"])
        try await client.publish([UInt8]([0, 1, 2]), to: "\(prefix):a")
        try await client.publish("two", to: "\(prefix):b")
        try await client.publish("ignored", to: "other-\(prefix)")
        let messages = try await within(.seconds(10), "2 pattern messages") {
            var messages: [RedisMessage] = []
            for await message in subscription {
                messages.append(message)
                if messages.count == 2 { break }
            }
            return messages
        }
        #expect(
            messages == [
                RedisMessage(channel: "\(prefix):a", pattern: "\(prefix):*", payload: [0, 1, 2]),
                RedisMessage(channel: "\(prefix):b", pattern: "\(prefix):*", payload: Array("two".utf8)),
            ])
        subscription.unsubscribe()
        await client.close()
    }

    @Test("channels routed from one shared pattern subscription each get only their own messages")
    func routedThroughPattern() async throws {
        let client = try await RedisTest.client()
        let subscriber = try await client.subscriber
        let prefix = TestServers.uniqueName("redis-route")
        let first = try await subscriber.subscribe(channel: "\(prefix):1", viaPattern: "\(prefix):*")
        let second = try await subscriber.subscribe(channel: "\(prefix):2", viaPattern: "\(prefix):*")
        // One pattern subscription in Redis serves both: each PUBLISH reaches exactly one subscriber.
        #expect(try await client.publish("for 2", to: "\(prefix):2") == 1)
        #expect(try await client.publish("for nobody", to: "\(prefix):3") == 1)
        #expect(try await client.publish("for 1", to: "\(prefix):1") == 1)
        let one = try await within(.seconds(10), "routed message 1") { await first.first { _ in true } }
        let two = try await within(.seconds(10), "routed message 2") { await second.first { _ in true } }
        #expect(one?.string == "for 1")
        #expect(one?.channel == "\(prefix):1")
        #expect(two?.string == "for 2")
        await client.close()
    }

    @Test("unsubscribe ends the sequence and Redis forgets the channel; so does dropping it")
    func unsubscribe() async throws {
        let client = try await RedisTest.client()
        let subscriber = try await client.subscriber
        let channel = TestServers.uniqueName("redis-unsub")
        let subscription = try await subscriber.subscribe([channel])
        let other = try await subscriber.subscribe([channel])
        #expect(try await client.publish("both", to: channel) == 1)  // one Redis subscription for both
        subscription.unsubscribe()
        let drained = try await within(.seconds(10), "the sequence to end") {
            var count = 0
            for await _ in subscription { count += 1 }
            return count
        }
        #expect(drained <= 1)
        // The other subscription still holds the channel.
        #expect(try await subscriberCount(channel, client) == 1)
        let received = try await within(.seconds(10), "the other subscription's message") {
            await other.first { _ in true }
        }
        #expect(received?.string == "both")
        other.unsubscribe()
        try await within(.seconds(10), "Redis to drop the channel") {
            while try await subscriberCount(channel, client) != 0 { try await Task.sleep(for: .milliseconds(20)) }
        }

        // A subscription iterated in a scope that ends (break, then the value is gone) unsubscribes too.
        let dropped = TestServers.uniqueName("redis-drop")
        try await receiveOneAndDrop(dropped, subscriber, client)
        try await within(.seconds(10), "Redis to drop the abandoned channel") {
            while try await subscriberCount(dropped, client) != 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        await client.close()
    }

    private func receiveOneAndDrop(
        _ channel: String, _ subscriber: RedisSubscriber, _ client: RedisClient
    )
        async throws
    {
        let subscription = try await subscriber.subscribe([channel])
        #expect(try await subscriberCount(channel, client) == 1)
        try await client.publish("once", to: channel)
        for await message in subscription {
            #expect(message.string == "once")
            break
        }
    }

    private func subscriberCount(_ channel: String, _ client: RedisClient) async throws -> Int {
        let reply = try await client.send(RedisCommand("PUBSUB", "NUMSUB", channel))
        return reply.array?.last?.int ?? -1
    }

    @Test("a closed subscriber finishes its subscriptions and refuses new ones")
    func closed() async throws {
        let subscriber = try await RedisSubscriber.connect(RedisTest.configuration())
        let subscription = try await subscriber.subscribe([TestServers.uniqueName("redis-closed")])
        let empty = await RedisTest.error { try await subscriber.subscribe([]) }
        #expect(empty == .server("ERR wrong number of arguments for 'subscribe' command"))
        await subscriber.close()
        let ended = try await within(.seconds(10), "the sequence to end") {
            for await _ in subscription {}
            return true
        }
        #expect(ended)
        let error = await RedisTest.error { try await subscriber.subscribe(["x"]) }
        #expect(error == .closed)
    }
}

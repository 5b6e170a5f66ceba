import ConveyorIO
import ConveyorTestSupport
import Testing

@testable import ConveyorRedis

@Suite("Redis streams")
struct RedisStreamTests {
    @Test("XADD with explicit ids keeps order and rejects an id that is not greater")
    func explicitIDs() async throws {
        let redis = try await RedisTest.connect()
        let key = TestServers.uniqueName("redis-stream")
        #expect(try await redis.xadd(key, id: "1-1", fields: [("item", "a"), ("index", 0)]) == "1-1")
        #expect(try await redis.xadd(key, id: "1-2", fields: [("item", [UInt8]([0, 255]))]) == "1-2")
        // A replayed producer re-adding item 1-2 is refused, so an item is never added twice.
        let replay = await RedisTest.error { try await redis.xadd(key, id: "1-2", fields: [("item", "again")]) }
        #expect(
            replay.map { if case .server(let text) = $0 { text.contains("equal or smaller") } else { false } } == true)
        let entries = try await redis.xrange(key)
        #expect(entries.map(\.id) == ["1-1", "1-2"])
        #expect(entries[0]["item"] == Array("a".utf8))
        #expect(entries[0]["index"] == Array("0".utf8))
        #expect(entries[1]["item"] == [0, 255])
        #expect(try await redis.xadd(key, fields: [("item", "c")]).hasSuffix("-0"))
        try await redis.del(key)
        await redis.close()
    }

    @Test("XREAD BLOCK on a dedicated connection does not stall the shared connection")
    func blockingReadBesideSharedTraffic() async throws {
        let client = try await RedisTest.client()
        let key = TestServers.uniqueName("redis-xread")
        let readerDone = LockedValue(false)
        let reader = Task {
            defer { readerDone.withLock { $0 = true } }
            return try await client.withDedicatedConnection { connection in
                // Long enough that only a stalled shared connection, not a slow machine, ends it early.
                try await connection.xread([(key, "0")], block: .seconds(60), timeout: .seconds(70))
            }
        }
        // Give the XREAD time to reach Redis and block there.
        try await Task.sleep(for: .milliseconds(200))
        // The shared connection keeps serving while the read blocks.
        for index in 0..<200 {
            try await client.set("\(key):k", to: index)
        }
        #expect(try await client.get("\(key):k") == Array("199".utf8))
        #expect(readerDone.current == false)
        try await client.xadd(key, id: "7-1", fields: [("chunk", "first")])
        let result = try await within(.seconds(30), "the blocked XREAD") { try await reader.value }
        #expect(result[key]?.map(\.id) == ["7-1"])
        #expect(result[key]?.first?["chunk"] == Array("first".utf8))
        try await client.del([key, "\(key):k"])
        await client.close()
    }

    @Test("XREAD BLOCK that times out on the server returns no entries")
    func blockingReadTimesOut() async throws {
        let client = try await RedisTest.client()
        let key = TestServers.uniqueName("redis-xread-empty")
        let result = try await client.withDedicatedConnection { connection in
            try await connection.xread([(key, "$")], block: .milliseconds(100), timeout: .seconds(5))
        }
        #expect(result.isEmpty)
        await client.close()
    }
}

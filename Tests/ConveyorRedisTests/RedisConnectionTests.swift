import ConveyorIO
import ConveyorTestSupport
import Testing

@testable import ConveyorRedis

@Suite("Redis connection")
struct RedisConnectionTests {
    @Test("SET, GET, INCR, EXPIRE, DEL round trip")
    func basics() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-basics")
        let key = "\(prefix):greeting"
        #expect(try await redis.send(RedisCommand("PING"), timeout: nil) == .simpleString("PONG"))
        #expect(try await redis.set(key, to: "hello"))
        #expect(try await redis.getString(key) == "hello")
        #expect(try await redis.set(key, to: "again", condition: .ifNotExists) == false)
        #expect(try await redis.incr("\(prefix):counter") == 1)
        #expect(try await redis.incr("\(prefix):counter", by: 41) == 42)
        #expect(try await redis.get("\(prefix):counter") == Array("42".utf8))
        #expect(try await redis.expire(key, after: .seconds(60)))
        let ttl = try await redis.send(RedisCommand("PTTL", key), timeout: nil).int ?? -1
        #expect((1...60_000).contains(ttl))
        #expect(try await redis.get("\(prefix):missing") == nil)
        #expect(try await redis.del([key, "\(prefix):counter", "\(prefix):missing"]) == 2)
        #expect(try await redis.exists(key) == false)
        await redis.close()
    }

    @Test("values with NUL bytes and all 256 byte values round trip")
    func binarySafe() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-binary")
        let allBytes = (0...255).map { UInt8($0) }
        let withNULs: [UInt8] = [0, 0, 1, 0, 13, 10, 36, 42, 0]
        let binaryKey = "\(prefix):\u{0}key\r\n"
        try await redis.set(binaryKey, to: allBytes)
        #expect(try await redis.get(binaryKey) == allBytes)
        try await redis.set("\(prefix):nul", to: withNULs)
        #expect(try await redis.get("\(prefix):nul") == withNULs)
        let large = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await redis.set("\(prefix):large", to: large)
        #expect(try await redis.get("\(prefix):large") == large)
        try await redis.set("\(prefix):empty", to: [UInt8]())
        #expect(try await redis.get("\(prefix):empty") == [])
        try await RedisTest.deleteKeys(prefix: prefix, on: redis)
        await redis.close()
    }

    @Test("an error reply throws .server with Redis's text; the connection keeps working")
    func errorReplies() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-errors")
        try await redis.set("\(prefix):string", to: "x")
        let error = await RedisTest.error {
            try await redis.send(RedisCommand("LPUSH", "\(prefix):string", "v"), timeout: nil)
        }
        guard case .server(let message) = error else {
            Issue.record("expected .server, got \(String(describing: error))")
            return
        }
        #expect(message.hasPrefix("WRONGTYPE"))
        let unknown = await RedisTest.error { try await redis.send(RedisCommand("NOSUCHCOMMAND"), timeout: nil) }
        #expect(
            unknown.map { if case .server(let text) = $0 { text.contains("unknown command") } else { false } } == true)
        #expect(try await redis.getString("\(prefix):string") == "x")
        try await RedisTest.deleteKeys(prefix: prefix, on: redis)
        await redis.close()
    }

    @Test("an explicit batch returns one result per command, an error only in its own slot")
    func batch() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-batch")
        let results = try await redis.send(batch: [
            RedisCommand("SET", "\(prefix):a", "1"),
            RedisCommand("INCR", "\(prefix):a"),
            RedisCommand("LPUSH", "\(prefix):a", "x"),
            RedisCommand("GET", "\(prefix):a"),
            RedisCommand("GET", "\(prefix):nothing"),
        ])
        #expect(results.count == 5)
        #expect(try results[0].get() == .simpleString("OK"))
        #expect(try results[1].get() == .integer(2))
        if case .failure(.server(let message)) = results[2] {
            #expect(message.hasPrefix("WRONGTYPE"))
        } else {
            Issue.record("expected WRONGTYPE, got \(results[2])")
        }
        #expect(try results[3].get() == .bulkString(Array("2".utf8)))
        #expect(try results[4].get() == .null)
        #expect(try await redis.send(batch: [], timeout: nil).isEmpty)
        try await RedisTest.deleteKeys(prefix: prefix, on: redis)
        await redis.close()
    }

    @Test("hashes and sorted sets through the typed helpers")
    func hashesAndSortedSets() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-collections")
        #expect(try await redis.hset("\(prefix):h", [("state", "STARTED"), ("attempts", 1)]) == 2)
        #expect(try await redis.hset("\(prefix):h", [("state", "SUCCESS")]) == 0)
        let fields = try await redis.hgetall("\(prefix):h")
        #expect(fields == ["state": Array("SUCCESS".utf8), "attempts": Array("1".utf8)])
        #expect(try await redis.hget("\(prefix):h", field: "attempts") == Array("1".utf8))
        #expect(try await redis.hgetall("\(prefix):none").isEmpty)

        #expect(try await redis.zadd("\(prefix):z", [("c", 3), ("a", 1), ("b", 2.5)]) == 3)
        let due = try await redis.zrangebyscore("\(prefix):z", min: "-inf", max: 2.5)
        #expect(due == [Array("a".utf8), Array("b".utf8)])
        #expect(try await redis.zrangebyscore("\(prefix):z", min: "(1", max: "+inf", limit: 1) == [Array("b".utf8)])
        #expect(try await redis.zrem("\(prefix):z", ["a", "zz"]) == 1)
        try await RedisTest.deleteKeys(prefix: prefix, on: redis)
        await redis.close()
    }

    @Test("10,000 concurrent tasks on one connection: every reply matches its command")
    func tenThousandConcurrentCallers() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-concurrent")
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<10_000 {
                group.addTask {
                    let key = "\(prefix):\(index)"
                    let value = "value-\(index)-\(key.hashValue)"
                    try await redis.set(key, to: value)
                    let read = try await redis.getString(key)
                    return read == value ? 0 : 1
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        #expect(redis.outstandingReplies == 0)
        try await RedisTest.deleteKeys(prefix: prefix, on: redis)
        await redis.close()
    }

    @Test("many commands with every kind of reply: replies are freed (run under --sanitize=address)")
    func manyRepliesFreed() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-leak")
        try await redis.send(
            RedisCommand("RPUSH", "\(prefix):list", "a", "b", [UInt8](repeating: 7, count: 2000)), timeout: nil)
        try await redis.hset("\(prefix):hash", [("f", "v")])
        for round in 0..<200 {
            let results = try await redis.send(batch: [
                RedisCommand("SET", "\(prefix):k", round),
                RedisCommand("GET", "\(prefix):k"),
                RedisCommand("LRANGE", "\(prefix):list", 0, -1),
                RedisCommand("HGETALL", "\(prefix):hash"),
                RedisCommand("GET", "\(prefix):missing"),
                RedisCommand("LPOP", "\(prefix):hash"),
                RedisCommand("EVAL", "return {1, {'nested', {2}}, redis.status_reply('OK')}", 0),
            ])
            #expect(try results[1].get().int == round)
            #expect(try results[2].get().array?.count == 3)
            #expect(results[5].isFailure)
        }
        try await RedisTest.deleteKeys(prefix: prefix, on: redis)
        await redis.close()
    }

    @Test("a closed connection fails new commands with .closed")
    func closed() async throws {
        let redis = try await RedisTest.connect()
        await redis.close()
        let error = await RedisTest.error { try await redis.send(RedisCommand("PING"), timeout: nil) }
        #expect(error == .closed)
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}

import ConveyorIO
import ConveyorTestSupport
import Testing

@testable import ConveyorRedis

@Suite("Redis deadlines")
struct RedisDeadlineTests {
    @Test("a BLPOP blocking longer than the client's deadline fails with .timeout")
    func blockingCommandTimesOut() async throws {
        let client = try await RedisTest.client()
        let key = TestServers.uniqueName("redis-blpop")
        let started = ContinuousClock.now
        let error = await RedisTest.error {
            try await client.blocking(RedisCommand("BLPOP", key, 30), timeout: .milliseconds(300))
        }
        #expect(error == .timeout(operation: "BLPOP", after: .milliseconds(300)))
        #expect(ContinuousClock.now - started < .seconds(20))  // not the server's 30 s
        // The connection still owing the BLPOP reply is not handed to the next user: a PING answers at once.
        let pong = try await client.withDedicatedConnection {
            try await $0.send(RedisCommand("PING"), timeout: .seconds(2))
        }
        #expect(pong == .simpleString("PONG"))
        // And a blocking command that the server answers comes back with its own reply. (Another key: Redis may
        // see the timed-out BLPOP's disconnect after a push, and then that BLPOP takes the element.)
        let jobs = "\(key):jobs"
        try await client.send(RedisCommand("RPUSH", jobs, "job"))
        let popped = try await client.blocking(RedisCommand("BLPOP", jobs, 5), timeout: .seconds(10))
        #expect(popped == .array([.bulkString(Array(jobs.utf8)), .bulkString(Array("job".utf8))]))
        await client.close()
    }

    @Test("a timed-out command keeps its place: the replies behind it still match their commands")
    func slotStaysAfterTimeout() async throws {
        let redis = try await RedisTest.connect()
        let key = TestServers.uniqueName("redis-slot")
        let error = await RedisTest.error {
            try await redis.send(RedisCommand("BLPOP", key, 1), timeout: .milliseconds(100))
        }
        #expect(error == .timeout(operation: "BLPOP", after: .milliseconds(100)))
        // Queued behind the BLPOP on the same connection; its null reply (after 1 s) must not be taken as ours.
        try await redis.set(key, to: "mine")
        #expect(try await redis.getString(key) == "mine")
        #expect(redis.outstandingReplies == 0)
        try await redis.del(key)
        await redis.close()
    }

    @Test("a batch past its deadline fails as a whole with .timeout")
    func batchTimesOut() async throws {
        let client = try await RedisTest.client()
        let key = TestServers.uniqueName("redis-batch-timeout")
        let error = await RedisTest.error {
            try await client.withDedicatedConnection { connection in
                try await connection.send(
                    batch: [RedisCommand("PING"), RedisCommand("BLPOP", key, 2), RedisCommand("PING")],
                    timeout: .milliseconds(200))
            }
        }
        #expect(error == .timeout(operation: "batch of 3 commands", after: .milliseconds(200)))
        await client.close()
    }

    @Test("dedicated connections are capped: a user waits for a free one, until its deadline")
    func dedicatedPoolCap() async throws {
        let client = try await RedisClient.connect(RedisTest.configuration(), maxDedicatedConnections: 1)
        let key = TestServers.uniqueName("redis-pool")
        let leased = LockedValue(false)
        let holder = Task {
            try await client.withDedicatedConnection { connection in
                leased.withLock { $0 = true }
                // Blocks until the test pushes an element, however slow the machine is.
                return try await connection.send(RedisCommand("BLPOP", key, 60), timeout: .seconds(90))
            }
        }
        try await within(.seconds(10), "the first lease") {
            while !leased.current { try await Task.sleep(for: .milliseconds(5)) }
        }
        let waited = await RedisTest.error {
            try await client.blocking(RedisCommand("PING"), timeout: .milliseconds(200))
        }
        #expect(waited == .timeout(operation: "waiting for a dedicated connection", after: .milliseconds(200)))
        try await client.send(RedisCommand("RPUSH", key, "wake"))
        let popped = try await within(.seconds(10), "the holder's BLPOP") { try await holder.value }
        #expect(popped == .array([.bulkString(Array(key.utf8)), .bulkString(Array("wake".utf8))]))
        // Released: the next user gets it.
        #expect(try await client.blocking(RedisCommand("PING")) == .simpleString("PONG"))
        await client.close()
    }
}

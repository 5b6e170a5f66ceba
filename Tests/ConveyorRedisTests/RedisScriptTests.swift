import ConveyorIO
import ConveyorTestSupport
import Testing

@testable import ConveyorRedis

@Suite("Redis scripts")
struct RedisScriptTests {
    static let incrementBy = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")

    @Test("the first call loads the script; later calls use EVALSHA with the cached SHA")
    func evalsha() async throws {
        let redis = try await RedisTest.connect()
        let prefix = TestServers.uniqueName("redis-script")
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1]) -- \(prefix)")
        #expect(script.sha == nil)
        #expect(try await redis.evalScript(script, keys: ["\(prefix):n"], arguments: [5]) == .integer(5))
        let sha = try #require(script.sha)
        #expect(sha.count == 40)
        let exists = try await redis.send(RedisCommand("SCRIPT", "EXISTS", sha), timeout: nil)
        #expect(exists == .array([.integer(1)]))
        // Same SHA for a second instance of the same source: Redis hashes the source.
        #expect(try await redis.evalScript(script, keys: ["\(prefix):n"], arguments: [2]) == .integer(7))
        #expect(script.sha == sha)

        // Many concurrent first calls of a fresh script all succeed.
        let fresh = RedisScript("return ARGV[1] .. '-\(prefix)'")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask {
                    let reply = try await redis.evalScript(fresh, arguments: [index])
                    #expect(reply.string == "\(index)-\(prefix)")
                }
            }
            try await group.waitForAll()
        }
        try await RedisTest.deleteKeys(prefix: prefix, on: redis)
        await redis.close()
    }

    @Test("an error raised by the script is a .server error")
    func scriptError() async throws {
        let redis = try await RedisTest.connect()
        let script = RedisScript("return redis.error_reply('CONFLICT lease held elsewhere')")
        let error = await RedisTest.error { try await redis.evalScript(script) }
        #expect(error == .server("CONFLICT lease held elsewhere"))
        await redis.close()
    }

    @Test("after SCRIPT FLUSH (NOSCRIPT) the script is loaded again and the call retried")
    func noscriptRecovery() async throws {
        // SCRIPT FLUSH empties the whole server's script cache: a private server keeps it from other tests.
        let server = try await PrivateRedis.start()
        do {
            let redis = try await RedisConnection.connect(RedisTest.configuration(url: server.url))
            let script = RedisScript("return redis.call('INCR', KEYS[1])")
            #expect(try await redis.evalScript(script, keys: ["n"]) == .integer(1))
            let sha = try #require(script.sha)
            try await redis.send(RedisCommand("SCRIPT", "FLUSH"))
            let missing = await RedisTest.error { try await redis.send(RedisCommand("EVALSHA", sha, 1, "n")) }
            #expect(missing == .noScript)
            #expect(try await redis.evalScript(script, keys: ["n"]) == .integer(2))
            #expect(try await redis.send(RedisCommand("SCRIPT", "EXISTS", sha)) == .array([.integer(1)]))
            await redis.close()
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }
}

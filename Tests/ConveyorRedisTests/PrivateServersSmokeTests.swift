import ConveyorTestSupport
import Foundation
import Testing

/// The private Redis that chaos tests use: it starts, keeps its data across a restart and a crash, and goes away.
@Suite("Private Redis server")
struct PrivateRedisSmokeTests {
    @Test("restart and kill keep the data; shutdown removes the server and its folder")
    func lifecycle() async throws {
        // `always` so that a write acknowledged before the kill is on disk.
        let redis = try await PrivateRedis.start(appendfsync: .always)
        do {
            #expect(redis.url == "redis://127.0.0.1:\(redis.port)/0")
            #expect(PrivatePorts.isListening(redis.port))
            let key = TestServers.uniqueName("smoke")
            #expect(try await redis.redisCLI(["SET", key, "kept"]) == "OK\n")

            try await redis.restart()
            #expect(try await redis.redisCLI(["GET", key]) == "kept\n")

            try await redis.kill()
            #expect(!PrivatePorts.isListening(redis.port))
            try await redis.startAgain()
            #expect(try await redis.redisCLI(["GET", key]) == "kept\n")

            try await redis.stop()
            #expect(!PrivatePorts.isListening(redis.port))
            try await redis.startAgain()
            #expect(try await redis.redisCLI(["GET", key]) == "kept\n")
        } catch {
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
        #expect(!PrivatePorts.isListening(redis.port))
        #expect(!FileManager.default.fileExists(atPath: redis.folder.path))
    }
}

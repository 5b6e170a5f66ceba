import ConveyorIO
import ConveyorTestSupport
import Testing

@testable import ConveyorRedis

@Suite("Redis bad input")
struct RedisBadInputTests {
    @Test("a malformed URL is .invalidURL before anything connects")
    func malformedURL() async throws {
        #expect(throws: RedisError.invalidURL("the port must be a number in 1...65535, got '63799x'")) {
            try RedisConfiguration(url: "redis://127.0.0.1:63799x/0")
        }
    }

    @Test("a port nobody listens on is .connectionRefused naming host and port")
    func refused() async throws {
        let port = try PrivatePorts.unused()
        let error = await RedisTest.error {
            try await RedisConnection.connect(RedisTest.configuration(url: "redis://127.0.0.1:\(port)"))
        }
        #expect(error == .connectionRefused(host: "127.0.0.1", port: port))
        #expect(error?.description.contains("127.0.0.1:\(port) refused the connection") == true)
    }

    @Test("a host that does not resolve is .unavailable with the resolver's reason")
    func unknownHost() async throws {
        let error = await RedisTest.error {
            try await RedisConnection.connect(RedisTest.configuration(url: "redis://no-such-host.invalid:6379"))
        }
        guard case .unavailable(let reason) = error else {
            Issue.record("expected .unavailable, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("no-such-host.invalid"))
    }

    @Test("a database the server does not have fails the connect with SELECT's error")
    func missingDatabase() async throws {
        let url = try RedisURL(string: TestServers.redisURL)
        var bad = url
        bad.database = 10_000
        let error = await RedisTest.error { try await RedisConnection.connect(RedisConfiguration(url: bad)) }
        guard case .server(let message) = error else {
            Issue.record("expected .server, got \(String(describing: error))")
            return
        }
        #expect(message.contains("SELECT 10000"))
    }

    @Test("a wrong or missing password is .authenticationFailed with the server's text; the right one works")
    func wrongPassword() async throws {
        // requirepass would lock every other test out of the shared server: use a private one.
        let server = try await PrivateRedis.start()
        do {
            let admin = try await RedisConnection.connect(RedisTest.configuration(url: server.url))
            try await admin.send(RedisCommand("CONFIG", "SET", "requirepass", "right horse"))
            await admin.close()

            let host = "127.0.0.1:\(server.port)"
            let wrong = await RedisTest.error {
                try await RedisConnection.connect(RedisTest.configuration(url: "redis://:wrong@\(host)"))
            }
            guard case .authenticationFailed(let wrongMessage) = wrong else {
                Issue.record("expected .authenticationFailed, got \(String(describing: wrong))")
                throw TestTimeout(what: "a clear error")
            }
            #expect(wrongMessage.hasPrefix("WRONGPASS") || wrongMessage.contains("invalid password"))
            #expect(wrong?.description.contains("wrong") == false)  // the password is not echoed

            let missing = await RedisTest.error {
                try await RedisConnection.connect(RedisTest.configuration(url: "redis://\(host)"))
            }
            #expect(missing == .authenticationFailed("NOAUTH Authentication required."))

            let right = try await RedisConnection.connect(
                RedisTest.configuration(url: "redis://:right%20horse@\(host)/1"))
            #expect(try await right.send(RedisCommand("PING")) == .simpleString("PONG"))
            #expect(try await right.send(RedisCommand("CLIENT", "INFO")).string?.contains("db=1") == true)
            await right.close()
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }
}

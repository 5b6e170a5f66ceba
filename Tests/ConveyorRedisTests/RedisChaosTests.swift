import ConveyorIO
import ConveyorTestSupport
import Testing

@testable import ConveyorRedis

@Suite("Redis chaos")
struct RedisChaosTests {
    private struct Outcomes {
        var successes = 0
        var mismatches = 0
        var errors: [RedisError] = []
    }

    @Test("Redis restarted during a stream of commands: clear errors during the outage, the same client works after")
    func restartDuringTraffic() async throws {
        let server = try await PrivateRedis.start()
        do {
            try await restartDuringTraffic(server)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }

    private func restartDuringTraffic(_ server: PrivateRedis) async throws {
        let policy = ReconnectPolicy(
            connectTimeout: .seconds(1), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(250),
            heartbeat: .seconds(5), operationTimeout: .milliseconds(500))
        let client = try await RedisClient.connect(RedisTest.configuration(url: server.url, policy: policy))
        let subscriber = try await client.subscriber
        let reconnections = subscriber.reconnections()
        let subscription = try await subscriber.subscribe(["chaos"], timeout: .seconds(5))
        let script = RedisScript("return redis.call('INCR', KEYS[1])")
        #expect(try await client.evalScript(script, keys: ["script-counter"]) == .integer(1))

        let outcomes = LockedValue(Outcomes())
        let stop = LockedValue(false)
        let traffic = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var round = 0
                        while !stop.current {
                            round += 1
                            let value = "\(worker)-\(round)"
                            do {
                                try await client.set("worker:\(worker)", to: value)
                                let read = try await client.getString("worker:\(worker)")
                                outcomes.withLock { read == value ? ($0.successes += 1) : ($0.mismatches += 1) }
                            } catch let error as RedisError {
                                outcomes.withLock { $0.errors.append(error) }
                                try? await Task.sleep(for: .milliseconds(20))
                            } catch {
                                Issue.record("unexpected error \(error)")
                            }
                        }
                    }
                }
            }
        }

        do {
            try await outageAndRecovery(
                server, client, traffic: traffic, stop: stop, outcomes: outcomes, reconnections: reconnections,
                subscription: subscription, script: script)
        } catch {
            // A failed wait must not leave the traffic loop and the client retrying after the server is gone.
            stop.withLock { $0 = true }
            await traffic.value
            await client.close()
            throw error
        }
        await client.close()
    }

    private func outageAndRecovery(
        _ server: PrivateRedis, _ client: RedisClient, traffic: Task<Void, Never>, stop: LockedValue<Bool>,
        outcomes: LockedValue<Outcomes>, reconnections: AsyncStream<Void>,
        subscription: RedisSubscription, script: RedisScript
    ) async throws {
        // A precondition (traffic flows before the outage), so it may wait long on a loaded machine.
        try await waitUntil("traffic before the outage", within: .seconds(60)) { outcomes.current.successes >= 200 }
        try await server.stop()
        try await waitUntil("errors during the outage") { !outcomes.current.errors.isEmpty }
        // Issued while Redis is down, with a deadline longer than the outage: it waits and succeeds.
        let patient = Task { try await client.set("patient", to: "waited", timeout: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(800))
        let errorsDuringOutage = outcomes.current.errors
        try await server.startAgain()
        let successesAtRestart = outcomes.current.successes
        try await waitUntil("traffic after the restart") { outcomes.current.successes >= successesAtRestart + 200 }
        stop.withLock { $0 = true }
        await traffic.value

        #expect(try await patient.value)
        #expect(try await client.getString("patient") == "waited")
        let final = outcomes.current
        #expect(final.mismatches == 0)
        #expect(!errorsDuringOutage.isEmpty)
        for error in final.errors {
            switch error {
            case .connectionLost, .unavailable, .timeout: break
            default: Issue.record("unexpected error during the outage: \(error)")
            }
        }
        // Commands that waited for a reconnect until their deadline say why the server is unavailable.
        let unavailable = errorsDuringOutage.compactMap {
            if case .unavailable(let reason) = $0 { reason } else { nil }
        }
        #expect(unavailable.contains { $0.contains("refused the connection") })

        // Pub/sub re-subscribed by itself: the reconnect is announced, then a message arrives.
        try await within(.seconds(10), "the subscriber's reconnect") {
            _ = await reconnections.first { _ in true }
        }
        #expect(try await client.publish("after restart", to: "chaos") == 1)
        let message = try await within(.seconds(10), "a message after the restart") {
            await subscription.first { _ in true }
        }
        #expect(message?.string == "after restart")

        // The restarted server lost its script cache: the script is loaded again (NOSCRIPT) transparently.
        #expect(try await client.evalScript(script, keys: ["script-counter"]) == .integer(2))
    }

    private func waitUntil(
        _ what: String, within limit: Duration = .seconds(20), _ condition: @escaping @Sendable () -> Bool
    ) async throws {
        try await within(limit, what) {
            while !condition() { try await Task.sleep(for: .milliseconds(10)) }
        }
    }
}

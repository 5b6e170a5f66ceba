import ConveyorAMQP
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// Notifications published while the pub/sub connection is down are lost; the client re-reads every outstanding
/// waiter's meta when it is back.
@Suite("ConveyorClient: pub/sub reconnect")
struct ClientReconnectTests {
    @Test("a result whose notification was lost is found by the re-read after the subscriber reconnects")
    func rereadAfterReconnect() async throws {
        let redis = try await PrivateRedis.start()
        do {
            try await Self.run(redis)
        } catch {
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
    }

    static func run(_ redis: PrivateRedis) async throws {
        var configuration = ConveyorConfiguration(
            brokerURLs: [TestServers.amqpURL], redisURL: redis.url, keyPrefix: "conveyor:",
            policy: ClientFixture.policy)
        configuration.defaultQueue = TestServers.uniqueName("client-reconnect")
        let client = try await ConveyorClient.connect(configuration)
        let admin = try await AMQPConnection.connect(
            AMQPConfiguration(url: TestServers.amqpURL, policy: ClientFixture.policy))
        let queue = configuration.defaultQueue
        do {
            let ref = try await client.submit(Add.self, .init(a: 4, b: 5), options: .init(queue: ""))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let output = try await ref.get(timeout: .seconds(20))
                    #expect(output == 9)
                }
                let channel = client.store.keys.notify(client.clientID)
                for _ in 0..<500 {
                    let reply = try await client.redis.send(RedisCommand("PUBSUB", "NUMSUB", channel))
                    if reply.array?.last?.int == 1 { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                // Record the outcome without notifying anyone: the notification is "lost".
                let token: Int64
                guard
                    case .run(let claimed, _) = try await client.store.claim(
                        ref.id, worker: "w", name: Add.name, queue: queue, lease: .seconds(30))
                else { throw TestFailure("claim did not say run") }
                token = claimed
                _ = try await client.store.finish(ref.id, token: token, outcome: .success(.int(9)), replyTo: nil)
                // Only our subscriber is a pub/sub client of this private server.
                _ = try await redis.redisCLI(["CLIENT", "KILL", "TYPE", "pubsub"])
                try await group.waitForAll()
            }
        } catch {
            _ = try? await admin.deleteQueue(queue)
            _ = try? await admin.deleteQueue(queue + ".dlq")
            await admin.close()
            await client.close()
            throw error
        }
        // The client declared the queue with its dead-letter queue (TaskQueueTopology): both go.
        _ = try? await admin.deleteQueue(queue)
        _ = try? await admin.deleteQueue(queue + ".dlq")
        await admin.close()
        await client.close()
    }
}

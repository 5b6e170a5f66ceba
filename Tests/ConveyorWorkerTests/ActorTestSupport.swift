import ConveyorAMQP
import ConveyorExamples
import ConveyorIO
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Logging
import Testing

@testable import Conveyor
@testable import ConveyorWorker

#if canImport(Glibc)
import Glibc
#endif

/// An actor system on a key prefix of the test's own, with an admin broker connection; every actor's mailbox and
/// every key under the prefix are deleted afterwards.
struct ActorFixture {
    let system: ConveyorActorSystem
    let admin: AMQPConnection
    let prefix: String
    let amqpURL: String
    let redisURL: String

    var client: ConveyorClient { system.client }
    var store: ActorStore { system.store }

    static func configuration(prefix: String, amqpURL: String, redisURL: String) -> ConveyorConfiguration {
        var configuration = ConveyorConfiguration(
            brokerURLs: [amqpURL], redisURL: redisURL, keyPrefix: prefix, policy: WorkerFixture.policy)
        configuration.resultKeyPrefix = prefix
        configuration.logger.logLevel = .error
        return configuration
    }

    var configuration: ConveyorConfiguration {
        Self.configuration(prefix: prefix, amqpURL: amqpURL, redisURL: redisURL)
    }

    static func with<T>(
        _ name: String, amqpURL: String = TestServers.amqpURL, redisURL: String = TestServers.redisURL,
        callTimeout: Duration = .seconds(60), _ body: (ActorFixture) async throws -> T
    ) async throws -> T {
        let prefix = TestServers.uniqueName("test-actor-\(name)") + ":"
        let system = try await ConveyorActorSystem.connect(
            configuration(prefix: prefix, amqpURL: amqpURL, redisURL: redisURL), callTimeout: callTimeout)
        let admin: AMQPConnection
        do {
            // Server restarts are expected in some of these tests: keep the admin connection's warnings quiet.
            var logger = Logger(label: "actor-test-admin")
            logger.logLevel = .error
            admin = try await AMQPConnection.connect(
                AMQPConfiguration(
                    url: amqpURL, policy: WorkerFixture.policy, connectionName: "actor-test-admin", logger: logger))
        } catch {
            await system.close()
            throw error
        }
        let fixture = ActorFixture(system: system, admin: admin, prefix: prefix, amqpURL: amqpURL, redisURL: redisURL)
        let result: Result<T, any Error>
        do {
            result = .success(try await body(fixture))
        } catch {
            result = .failure(error)
        }
        await fixture.cleanUp()
        await system.close()
        await admin.close()
        return try result.get()
    }

    /// Deletes the mailboxes of every actor under the prefix (live or ended) and every key.
    func cleanUp() async {
        var cursor = "0"
        var ids: [String] = []
        repeat {
            guard
                let reply = try? await client.redis.send(
                    RedisCommand("SCAN", cursor, "MATCH", prefix + "actor:*", "COUNT", "1000")),
                let parts = reply.array, parts.count == 2
            else { break }
            cursor = parts[0].string ?? "0"
            ids += (parts[1].array ?? []).compactMap(\.string).map { String($0.dropFirst((prefix + "actor:").count)) }
        } while cursor != "0"
        for id in ids { _ = try? await admin.deleteQueue(ConveyorActorID(id).queue) }
        try? await RedisTestKeys.delete(prefix: prefix, on: client.redis)
    }

    /// Runs an in-process actor host for `body`'s duration, then shuts it down and waits for it.
    func withHost<T>(
        id: String? = nil, _ body: (ConveyorActorHost) async throws -> T
    ) async throws -> T {
        let host = ConveyorActorHost(
            configuration: configuration, registry: Examples.actors, hostID: id, rescanInterval: .milliseconds(500))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await host.run() }
            let result: Result<T, any Error>
            do {
                result = .success(try await body(host))
            } catch {
                result = .failure(error)
            }
            host.shutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// The examples worker as a process of its own (tasks on a throwaway queue, the example actors).
    func startWorker(logLevel: String = "warning") throws -> ProcessRunner.ChildProcess {
        let executable = try #require(ExamplesWorkerProcess.executable, "conveyor-examples-worker is not built")
        return try ProcessRunner.start(
            executable: executable,
            arguments: ["--queues", prefix + "tasks", "--concurrency", "2", "--grace", "2", "--log-level", logLevel],
            environment: environment)
    }

    var environment: [String: String] {
        [
            "CONVEYOR_BROKER_URL": amqpURL, "CONVEYOR_REDIS_URL": redisURL, "CONVEYOR_PREFIX": prefix,
            "CONVEYOR_RESULT_PREFIX": prefix,
        ]
    }

    /// `conveyor-examples-actor-client`, built beside the test bundle.
    static var actorClientExecutable: String? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            TestServers.repositoryRoot.appendingPathComponent(".build/debug"),
        ].map { $0.appendingPathComponent("conveyor-examples-actor-client").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Deletes the worker task queue ``startWorker()`` made.
    func deleteTaskQueues() async {
        _ = try? await admin.deleteQueue(prefix + "tasks")
        _ = try? await admin.deleteQueue(prefix + "tasks.dlq")
    }
}

/// Seconds in a duration, as a Double.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

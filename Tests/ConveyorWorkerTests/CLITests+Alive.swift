import Conveyor
import ConveyorExamples
import ConveyorTestSupport
import ConveyorWorker
import Foundation
import Testing

extension CLITests {
    @Test(
        "inspect alive: 1 with no worker, 0 and the id while one beats on this host, 1 for another host and after it stops"
    )
    func inspectAlive() async throws {
        let queue = TestServers.uniqueName("cli-alive")
        // A key prefix of its own, so the shared servers' other workers do not count.
        let prefix = TestServers.uniqueName("conveyor-alive") + ":"
        let environment = ["CONVEYOR_PREFIX": prefix]
        let before = try await Self.conveyor("inspect", "alive", environment: environment)
        #expect(before.status == 1, "\(before.output)")
        #expect(before.output.contains("no worker on host"), "\(before.output)")

        var conveyor = ConveyorConfiguration(
            brokerURLs: [TestServers.amqpURL], redisURL: TestServers.redisURL, keyPrefix: prefix)
        conveyor.logger.logLevel = .warning
        let configuration = WorkerConfiguration(conveyor: conveyor, queues: [queue], concurrency: 1)
        let worker = ConveyorWorker(configuration: configuration, registry: Examples.registry)
        let running = Task { try await worker.run() }
        do {
            // The first beat comes when the worker has connected; allow a loaded machine its time.
            var alive = try await Self.conveyor("inspect", "alive", environment: environment)
            let deadline = ContinuousClock.now + .seconds(30)
            while alive.status != 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                alive = try await Self.conveyor("inspect", "alive", environment: environment)
            }
            #expect(alive.status == 0, "\(alive.output)")
            #expect(alive.output.contains(configuration.workerID), "\(alive.output)")

            let elsewhere = try await Self.conveyor(
                "inspect", "alive", "--host", "no-such-host.invalid", environment: environment)
            #expect(elsewhere.status == 1, "\(elsewhere.output)")
        } catch {
            Issue.record(error)
        }
        worker.shutdown()
        _ = try? await running.value
        // A clean shutdown removes the record at once.
        let after = try await Self.conveyor("inspect", "alive", environment: environment)
        #expect(after.status == 1, "\(after.output)")
        let client = try await Self.client()
        await Self.deleteQueues(queue, client: client)
        await client.close()
    }

    @Test("inspect alive with an unreachable Redis exits 1 with one line naming it")
    func inspectAliveWithoutRedis() async throws {
        let run = try await Self.conveyor("inspect", "alive", "--redis-url", "redis://127.0.0.1:1/0")
        #expect(run.status == 1)
        #expect(run.output.contains("cannot connect to Redis at redis://127.0.0.1:1/0"), "\(run.output)")
    }
}

@Suite struct ExamplesAddDelayTests {
    @Test("examples.add sends no delay unless one is set, so its messages stay what Celery callers send")
    func delayIsOptional() throws {
        #expect(try Examples.Add.encodeInput(.init(a: 2, b: 3)) == ["a": 2, "b": 3])
        #expect(try Examples.Add.encodeInput(.init(a: 2, b: 3, delay: 0.5)) == ["a": 2, "b": 3, "delay": 0.5])
        let decoded = try Examples.Add.decodeInput(from: TaskEnvelope(task: Examples.Add.name, args: [2, 3]))
        #expect(decoded.a == 2 && decoded.b == 3 && decoded.delay == nil)
    }
}

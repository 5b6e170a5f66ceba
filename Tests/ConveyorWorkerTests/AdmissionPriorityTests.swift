import ConveyorAMQP
import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Admission: priority queues")
struct AdmissionPriorityTests {
    @Test("one busy worker slot and a backlog: priority-9 tasks submitted last start before priority-0 ones")
    func highPriorityFirst() async throws {
        try await WorkerFixture.with("priority") { f in
            let queue = TestServers.uniqueName("worker-priority")
            f.usedQueues.withLock { $0.append(queue) }
            let topology = TaskQueueTopology(priorityQueues: [queue: 9])
            #expect(topology.queue(named: queue).queueType == .classic)
            #expect(topology.queue(named: queue).maxPriority == 9)
            #expect(topology.queue(named: f.queue).queueType == .quorum)
            // The producer declares it, as a first submit does; the worker then finds it as it is.
            var producerConfiguration = WorkerFixture.conveyorConfiguration(prefix: f.prefix)
            producerConfiguration.topology = topology
            let producer = try await ConveyorClient.connect(producerConfiguration)
            let outcome: Result<Void, any Error>
            do {
                try await Self.run(f, producer: producer, queue: queue, topology: topology)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            await producer.close()
            try outcome.get()
        }
    }

    @Test("CONVEYOR_PRIORITY_QUEUES names the priority queues, each with an optional highest priority")
    func priorityQueuesFromEnvironment() {
        #expect(TaskQueueTopology.parsePriorityQueues("urgent, images:5,bad:12,:3,") == ["urgent": 9, "images": 5])
        let configuration = ConveyorConfiguration.fromEnvironment(["CONVEYOR_PRIORITY_QUEUES": "urgent"])
        #expect(configuration.topology.priorityQueues == ["urgent": 9])
        #expect(ConveyorConfiguration.fromEnvironment([:]).topology.priorityQueues.isEmpty)
    }

    static func run(
        _ f: WorkerFixture, producer: ConveyorClient, queue: String, topology: TaskQueueTopology
    ) async throws {
        let list = f.prefix + "runs"
        let slow = try await producer.submit(
            Examples.Sleep.self, .init(seconds: 1.5), options: .init(queue: queue, priority: 0))
        var configuration = f.workerConfiguration(concurrency: 1)
        configuration.queues = [queue]
        configuration.conveyor.topology = topology
        try await f.withWorker(configuration) { _ in
            try await f.awaitState(slow.id, .started)
            var low: [String] = []
            var high: [String] = []
            for index in 0..<5 {
                low.append(
                    try await producer.submit(
                        Examples.Record.self, .init(key: list, token: "low\(index)"),
                        options: .init(queue: queue, priority: 0)
                    ).id)
            }
            for index in 0..<5 {
                high.append(
                    try await producer.submit(
                        Examples.Record.self, .init(key: list, token: "high\(index)"),
                        options: .init(queue: queue, priority: 9)
                    ).id)
            }
            #expect(try await f.store.status(slow.id).state == .started, "the slot was still busy: a real backlog")
            try await eventually("all ten ran", timeout: .seconds(30)) {
                try await f.redis.send(RedisCommand("LLEN", list)).int == 10
            }
            let order = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string) ?? []
            #expect(Set(order.prefix(5)) == Set(high), "run order: \(order)")
            #expect(Set(order.suffix(5)) == Set(low))
            var starts: [String: Int64] = [:]
            for id in low + high { starts[id] = try await f.store.status(id).startedMs }
            let lastHigh = try #require(high.compactMap { starts[$0] }.max())
            let firstLow = try #require(low.compactMap { starts[$0] }.min())
            #expect(lastHigh <= firstLow)
        }
    }
}

import ConveyorExamples
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Worker: server outages lose nothing")
struct WorkerOutageTests {
    @Test("Redis stopped while tasks arrive: the worker holds them unacked and finishes every one once Redis is back")
    func redisOutage() async throws {
        let server = try await PrivateRedis.start()
        do {
            try await WorkerFixture.with("redis-outage", redisURL: server.url) { f in
                try await f.withWorker(f.workerConfiguration(concurrency: 8)) { _ in
                    let before = try await f.client.submitMany(
                        Examples.Add.self, (0..<50).map { .init(a: $0, b: 1) }, options: .init(queue: f.queue))
                    let (ready, _) = try await f.client.wait(before, timeout: .seconds(20))
                    #expect(ready.count == 50)

                    try await server.stop()
                    // Publishing needs only the broker: these arrive while Redis is down.
                    let during = try await f.client.submitMany(
                        Examples.Add.self, (0..<50).map { .init(a: $0, b: 2) }, options: .init(queue: f.queue))
                    try await eventually("the worker holding deliveries it cannot claim") {
                        (try await f.admin.queueInfo(f.queue)?.messageCount ?? 0) < 50
                    }
                    try await Task.sleep(for: .milliseconds(700))
                    try await server.startAgain()

                    for (index, ref) in during.enumerated() {
                        #expect(try await ref.get(timeout: .seconds(30)) == index + 2)
                    }
                    for (index, ref) in before.enumerated() {
                        #expect(try await ref.get(timeout: .seconds(5)) == index + 1)
                    }
                    #expect(try await f.store.count(state: .success) == 100)
                }
            }
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }
}

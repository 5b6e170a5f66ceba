import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

/// One run of `examples.limited` as it recorded itself: start and end (Unix ms, the recording process's clock).
struct LimitedRun {
    var id: String
    var startMs: Int64
    var endMs: Int64?
}

extension WorkerFixture {
    /// Runs `count` in-process workers on this fixture's queue, each with its own connections, for `body`'s
    /// duration; then shuts them down gracefully and waits for them.
    func withWorkers<T>(
        _ count: Int, registry: TaskRegistry, concurrency: Int = 4, lease: Duration = .seconds(5),
        _ body: ([ConveyorWorker]) async throws -> T
    ) async throws -> T {
        let workers = (0..<count).map { index in
            var configuration = workerConfiguration(
                concurrency: concurrency, id: TestServers.uniqueName("limits-worker\(index)"))
            configuration.lease = lease
            return ConveyorWorker(configuration: configuration, registry: registry)
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { try await worker.run() } }
            let result: Result<T, any Error>
            do {
                try await awaitConsumers(on: queue, atLeast: count)
                result = .success(try await body(workers))
            } catch {
                result = .failure(error)
            }
            for worker in workers { worker.shutdown() }
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// The runs `examples.limited` recorded in the list `key`, by start time.
    func limitedRuns(_ key: String) async throws -> [LimitedRun] {
        let entries = try await redis.send(RedisCommand("LRANGE", key, 0, -1)).array?.compactMap(\.string) ?? []
        var runs: [String: LimitedRun] = [:]
        for entry in entries {
            let parts = entry.split(separator: " ")
            guard parts.count == 3, let ms = Int64(parts[1]) else { continue }
            let id = String(parts[2])
            if parts[0] == "s" {
                runs[id] = LimitedRun(id: id, startMs: ms, endMs: nil)
            } else {
                runs[id]?.endMs = ms
            }
        }
        return runs.values.sorted { $0.startMs < $1.startMs }
    }
}

/// The most runs in progress at once, from their recorded start and end times (an end at the same millisecond as a
/// start counts first: the slot was released before it was taken again).
func maxOverlap(_ runs: [LimitedRun]) -> Int {
    var events: [(ms: Int64, delta: Int)] = []
    for run in runs {
        events.append((run.startMs, 1))
        events.append((run.endMs ?? Int64.max, -1))
    }
    events.sort { $0.ms == $1.ms ? $0.delta < $1.delta : $0.ms < $1.ms }
    var current = 0
    var most = 0
    for event in events {
        current += event.delta
        most = max(most, current)
    }
    return most
}

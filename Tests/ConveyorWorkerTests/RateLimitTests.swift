import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Worker: fleet-wide rate limits")
struct RateLimitTests {
    @Test("\"20/s\" with three workers and 400 queued tasks: the fleet runs them at 20/s ± 10%, each once")
    func fleetRate() async throws {
        try await WorkerFixture.with("rate-fleet") { f in
            let list = f.prefix + "runs"
            let total = 400
            let refs = try await f.client.submitMany(
                Examples.Limited.self, (0..<total).map { _ in .init(key: list) }, options: .init(queue: f.queue))
            let registry = Examples.registry(limited: TaskRunOptions(rateLimit: try RateLimit("20/s")))
            let probe = try await StallProbe.watching(f.redis) { probe in
                try await f.withWorkers(3, registry: registry) { _ in
                    let (_, pending) = try await f.client.wait(refs, timeout: .seconds(90))
                    #expect(pending.isEmpty)
                }
                return probe
            }
            let runs = try await f.limitedRuns(list)
            #expect(runs.count == total, "each task ran exactly once")
            #expect(Set(runs.map(\.id)) == Set(refs.map(\.id)))
            let first = try #require(runs.first?.startMs)
            let last = try #require(runs.last?.startMs)
            let rate = Double(runs.count - 1) / (Double(last - first) / 1000)
            // No second holds many more than 20: the limit is a rate, not an average over a burst. Runs catch up at
            // most one second's worth (ClaimLimits.catchUpMs) when parked messages come back late and together, as
            // the first slots' do while the queued backlog is moved to the delay set; without that bound the first
            // second held 29 to 57 starts here. The bound is 20 + 1 + 20 by the claims' clock, a little more as
            // recorded.
            let busiest = busiestSecond(runs)
            // Where time went, for the log: the longest pause between two starts, and when it began.
            let gaps = zip(runs, runs.dropFirst()).map { ($1.startMs - $0.startMs, $0.startMs - first) }
            let longest = gaps.max { $0.0 < $1.0 } ?? (0, 0)
            print(
                "20/s fleet rate: \(total) tasks over \(last - first) ms = \(rate) per second; "
                    + "busiest second \(busiest); longest pause \(longest.0) ms, \(longest.1) ms after the first start; "
                    + "first 30 starts (ms): \(runs.prefix(30).map { $0.startMs - first }); "
                    + "slowest Redis ping \(probe.worstPing), latest wake \(probe.worstWake)")
            // Never faster than the limit allows, whatever the machine did. Not slower either, unless the machine
            // stalled: a Redis blocked on its AOF by a busy disk (as a CI run saw, with Redis logging "Asynchronous
            // AOF fsync is taking too long") stops the whole fleet, and the limiter then catches up at most a
            // second's worth by design, so the lost time shows in the rate without saying anything about it.
            #expect(rate <= 22, "measured \(rate)/s")
            if probe.stalled(beyond: .milliseconds(500)) {
                print(
                    "20/s fleet rate: lower bound not asserted: the machine stalled (slowest Redis ping "
                        + "\(probe.worstPing), latest wake \(probe.worstWake))")
            } else {
                #expect(rate >= 18, "measured \(rate)/s; slowest Redis ping \(probe.worstPing)")
            }
            #expect(busiest <= 45, "\(busiest) starts within one second")
        }
    }

    @Test("a per-key limit keeps keys independent: a throttled customer does not slow another")
    func perKeyIndependent() async throws {
        try await WorkerFixture.with("rate-keys") { f in
            let list = f.prefix + "runs"
            let registry = Examples.registry(
                limited: TaskRunOptions(rateLimit: try RateLimit("2/s"), rateLimitKey: .argument("customer")))
            try await f.withWorkers(1, registry: registry) { _ in
                let busy = try await f.client.submitMany(
                    Examples.Limited.self, (0..<8).map { _ in .init(key: list, customer: "busy") },
                    options: .init(queue: f.queue))
                // Let the busy customer's backlog be admitted (and mostly throttled) first.
                try await eventually("the busy customer's first run") { try await f.limitedRuns(list).count >= 1 }
                try await Task.sleep(for: .milliseconds(300))
                let submitted = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                let quiet = try await f.client.submitMany(
                    Examples.Limited.self, (0..<2).map { _ in .init(key: list, customer: "quiet") },
                    options: .init(queue: f.queue))
                let (_, pending) = try await f.client.wait(busy + quiet, timeout: .seconds(30))
                #expect(pending.isEmpty)

                let runs = try await f.limitedRuns(list)
                let quietIDs = Set(quiet.map(\.id))
                let quietRuns = runs.filter { quietIDs.contains($0.id) }
                let busyRuns = runs.filter { !quietIDs.contains($0.id) }
                #expect(quietRuns.count == 2)
                #expect(busyRuns.count == 8)
                // The quiet customer's two runs: the first at once, the second one interval (500 ms) later; the
                // busy one's backlog reaches ~3.5 s out.
                let quietLast = try #require(quietRuns.last?.startMs)
                print("per-key: quiet customer's runs \(quietRuns.map { $0.startMs - submitted }) ms after submit")
                #expect(quietLast - submitted < 2_000, "the quiet customer waited behind the busy one")
                // At most 2/s, plus a second's worth of catching up.
                #expect(busiestSecond(busyRuns) <= 5, "busy customer's runs closer than the limit")
                #expect(try #require(busyRuns.last?.startMs) - (try #require(busyRuns.first?.startMs)) >= 3_000)
            }
        }
    }

    @Test("a throttled task waits in the delay set, not in an execution slot; other tasks run meanwhile")
    func throttledHoldsNoSlot() async throws {
        try await WorkerFixture.with("rate-slot") { f in
            let list = f.prefix + "runs"
            let registry = Examples.registry(limited: TaskRunOptions(rateLimit: try RateLimit("1/m")))
            try await f.withWorkers(1, registry: registry, concurrency: 1) { _ in
                let limited = try await f.client.submitMany(
                    Examples.Limited.self, (0..<3).map { _ in .init(key: list) }, options: .init(queue: f.queue))
                let add = try await f.client.submit(
                    Examples.Add.self, .init(a: 1, b: 2), options: .init(queue: f.queue))
                // One slot, two throttled tasks ahead of it: the add still runs at once.
                #expect(try await add.get(timeout: .seconds(10)) == 3)
                try await eventually("both throttled tasks parked") {
                    var parked = 0
                    for ref in limited where try await f.store.scheduledTime(ref.id) != nil { parked += 1 }
                    return parked == 2
                }
                #expect(try await f.limitedRuns(list).count == 1)
                var dues: [Int64] = []
                for ref in limited {
                    if let due = try await f.store.scheduledTime(ref.id) { dues.append(due) }
                }
                dues.sort()
                let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                // Each has its own slot, one minute apart: they come back once, when due, and do not spin.
                #expect(dues.count == 2)
                if dues.count == 2 {
                    #expect(dues[1] - dues[0] == 60_000)
                    #expect(dues[0] - now > 50_000)
                }
            }
        }
    }

    @Test("the rate limit key: the header, a keyword or positional argument, nested fields; none without one")
    func keyExtraction() throws {
        var envelope = TaskEnvelope(id: "t", task: "examples.limited")
        envelope.kwargs = ["customer": .string("acme"), "account": .object(["id": .int(42)])]
        envelope.args = [.string("list"), .double(0.5), .string("positional")]
        #expect(RateLimitKey.argument("customer").key(of: envelope, argumentNames: []) == "acme")
        #expect(RateLimitKey.argument("account.id").key(of: envelope, argumentNames: []) == "42")
        #expect(RateLimitKey.argument("missing").key(of: envelope, argumentNames: []) == nil)
        envelope.kwargs = [:]
        #expect(
            RateLimitKey.argument("customer").key(of: envelope, argumentNames: ["key", "seconds", "customer"])
                == "positional")
        #expect(RateLimitKey.header.key(of: envelope, argumentNames: []) == nil)
        envelope.rateLimitKey = "tenant-7"
        #expect(envelope.conveyor["rate_limit_key"] == .string("tenant-7"))
        #expect(envelope.celeryHeaders["conveyor_rate_limit_key"] == .string("tenant-7"))
        #expect(RateLimitKey.header.key(of: envelope, argumentNames: []) == "tenant-7")
    }
}

/// The most runs that started within any one second.
func busiestSecond(_ runs: [LimitedRun]) -> Int {
    var busiest = 0
    var low = 0
    for high in runs.indices {
        while runs[high].startMs - runs[low].startMs >= 1_000 { low += 1 }
        busiest = max(busiest, high - low + 1)
    }
    return busiest
}

import ArgumentParser
import Conveyor
import ConveyorExamples
import ConveyorIO
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `conveyor demo`: submits many `examples.add` tasks and checks every result.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit many examples.add tasks, wait for them all, check each sum, and report the throughput.",
        discussion: """
            Needs a worker on the queue (conveyor worker --queues demo). Progress goes to standard error, the \
            summary to standard output. Exit status 1 if any task failed, returned a wrong sum or did not finish \
            within --timeout.
            """)

    @Option(help: "How many tasks.")
    var count = 1000

    @Option(help: "The queue.")
    var queue = "demo"

    @Option(help: "Tasks per submitMany batch.")
    var batch = 100

    @Option(help: ArgumentHelp("Seconds all results may take.", valueName: "seconds"))
    var timeout: Double = 300

    @Option(
        name: .customLong("worker-timeout"),
        help: ArgumentHelp(
            "Seconds to wait for a worker on the queue before submitting; 0 submits without looking.",
            valueName: "seconds"))
    var workerTimeout: Double = 30

    @Option(
        name: .customLong("task-delay"),
        help: ArgumentHelp(
            "Seconds each task sleeps before adding (examples.add's delay), to keep tasks in flight.",
            valueName: "seconds"))
    var taskDelay: Double = 0

    @OptionGroup var output: OutputOptions
    @OptionGroup var servers: ServerOptions

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1") }
        guard taskDelay >= 0, taskDelay.isFinite else {
            throw ValidationError("--task-delay must be zero or more seconds")
        }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if queue.isEmpty { throw ValidationError("--queue is empty") }
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number") }
        guard workerTimeout >= 0, workerTimeout.isFinite else {
            throw ValidationError("--worker-timeout must be zero or more seconds")
        }
    }

    /// How one task ended.
    enum Outcome: Sendable {
        case succeeded(latency: Duration)
        case wrong(expected: Int, got: Int)
        case failed(String)
        case timedOut
    }

    struct Summary {
        var succeeded = 0
        var wrong = 0
        var failed = 0
        var timedOut = 0
        var latencies: [Duration] = []
        var firstProblems: [String] = []
        var submitting: Duration = .zero
        var elapsed: Duration = .zero

        var problems: Int { wrong + failed + timedOut }

        mutating func add(_ outcome: Outcome) {
            switch outcome {
            case .succeeded(let latency):
                succeeded += 1
                latencies.append(latency)
            case .wrong(let expected, let got):
                wrong += 1
                note("wrong result: expected \(expected), got \(got)")
            case .failed(let why):
                failed += 1
                note(why)
            case .timedOut:
                timedOut += 1
            }
        }

        private mutating func note(_ problem: String) {
            if firstProblems.count < 5 { firstProblems.append(problem) }
        }

        /// The latency below which `fraction` of the successful tasks finished (nearest rank).
        func percentile(_ fraction: Double) -> Duration? {
            guard !latencies.isEmpty else { return nil }
            let sorted = latencies.sorted()
            let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
            return sorted[min(max(rank, 0), sorted.count - 1)]
        }
    }

    func run() async throws {
        CLI.bootstrapLogging()
        let summary = try await CLI.withClient(servers) { client in
            try await waitForWorker(client)
            return try await runTasks(client)
        }
        report(summary)
        if summary.problems > 0 { throw ExitCode.failure }
    }

    /// Waits until the queue has a consumer, so the figures measure the work and not a worker starting.
    private func waitForWorker(_ client: ConveyorClient) async throws {
        guard workerTimeout > 0 else { return }
        let deadline = ContinuousClock.now + .clampedSeconds(workerTimeout)
        var said = false
        while (try await client.broker.queueInfo(queue)?.consumerCount ?? 0) == 0 {
            guard ContinuousClock.now < deadline else {
                throw CLI.fail(
                    "no worker consumes queue '\(queue)' after \(Format.seconds(workerTimeout)); start one with "
                        + "`conveyor worker --queues \(queue)` (or pass --worker-timeout 0 to submit anyway)")
            }
            if !said {
                CLI.printError("waiting for a worker on queue '\(queue)' (conveyor worker --queues \(queue))…")
                said = true
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func runTasks(_ client: ConveyorClient) async throws -> Summary {
        let inputs = (0..<count).map { _ in
            Examples.Add.Input(
                a: Int.random(in: 0..<1_000_000), b: Int.random(in: 0..<1_000_000),
                delay: taskDelay > 0 ? taskDelay : nil)
        }
        let options = TaskOptions(queue: queue)
        let started = ContinuousClock.now
        let deadline = started + .clampedSeconds(timeout)
        var summary = Summary()
        var progress = ProgressBar(total: count, started: started)
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            var next = 0
            while next < inputs.count {
                let slice = Array(inputs[next..<min(next + batch, inputs.count)])
                next += slice.count
                let sent = ContinuousClock.now
                let refs = try await client.submitMany(Examples.Add.self, slice, options: options)
                for (ref, input) in zip(refs, slice) {
                    group.addTask { await Self.outcome(of: ref, input: input, sent: sent, deadline: deadline) }
                }
            }
            summary.submitting = ContinuousClock.now - started
            var done = 0
            for try await outcome in group {
                summary.add(outcome)
                done += 1
                progress.update(done: done)
            }
        }
        summary.elapsed = ContinuousClock.now - started
        progress.finish(done: summary.succeeded + summary.problems)
        return summary
    }

    /// Waits for one task and checks its sum; the latency runs from its batch's submission to its result.
    private static func outcome(
        of ref: ObjectRef<Int>, input: Examples.Add.Input, sent: ContinuousClock.Instant,
        deadline: ContinuousClock.Instant
    ) async -> Outcome {
        do {
            let sum = try await ref.get(timeout: max(.zero, deadline - ContinuousClock.now))
            let latency = ContinuousClock.now - sent
            return sum == input.a + input.b
                ? .succeeded(latency: latency) : .wrong(expected: input.a + input.b, got: sum)
        } catch let error as TaskError {
            return .failed("\(error.type): \(error.message)")
        } catch ConveyorError.timeout {
            return .timedOut
        } catch {
            return .failed(CLI.oneLine(String(describing: error)))
        }
    }

    private func report(_ summary: Summary) {
        let elapsed = summary.elapsed.seconds
        let rate = elapsed > 0 ? Double(count) / elapsed : 0
        let p50 = summary.percentile(0.5)
        let p99 = summary.percentile(0.99)
        if output.json {
            var object: [String: JSONValue] = [
                "task": .string(Examples.Add.name), "queue": .string(queue), "count": .int(Int64(count)),
                "succeeded": .int(Int64(summary.succeeded)), "failed": .int(Int64(summary.failed)),
                "wrong": .int(Int64(summary.wrong)), "timed_out": .int(Int64(summary.timedOut)),
                "elapsed_s": .double(elapsed), "submit_s": .double(summary.submitting.seconds),
                "tasks_per_s": .double(rate), "problems": .array(summary.firstProblems.map(JSONValue.string)),
            ]
            object["latency_p50_ms"] = p50.map { .double($0.seconds * 1000) }
            object["latency_p99_ms"] = p99.map { .double($0.seconds * 1000) }
            CLI.printJSON(.object(object))
            return
        }
        var lines = [
            ("tasks", "\(Format.grouped(count)) × \(Examples.Add.name) on queue '\(queue)'"),
            ("succeeded", Format.grouped(summary.succeeded)),
            ("failed", Format.grouped(summary.failed)),
            ("wrong results", Format.grouped(summary.wrong)),
        ]
        if summary.timedOut > 0 {
            lines.append(("timed out", "\(Format.grouped(summary.timedOut)) (after \(Format.seconds(timeout)))"))
        }
        lines.append(
            ("elapsed", "\(Format.seconds(elapsed)) (submitting: \(Format.seconds(summary.submitting.seconds)))"))
        lines.append(("throughput", "\(Format.grouped(Int(rate.rounded()))) tasks/s"))
        if let p50, let p99 {
            lines.append(
                ("latency", "p50 \(Format.seconds(p50.seconds)), p99 \(Format.seconds(p99.seconds)) (submit to result)")
            )
        }
        for problem in summary.firstProblems { lines.append(("problem", problem)) }
        let width = (lines.map(\.0.count).max() ?? 0) + 2
        print(
            lines.map { ($0.0 + ":").padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 }.joined(
                separator: "\n"))
    }
}

/// The demo's progress on standard error: a bar redrawn in place on a terminal, a line every 10% otherwise.
struct ProgressBar {
    let total: Int
    let started: ContinuousClock.Instant
    let interactive = isatty(STDERR_FILENO) == 1
    private var lastDraw: ContinuousClock.Instant?
    private var lastTenth = 0

    init(total: Int, started: ContinuousClock.Instant) {
        self.total = total
        self.started = started
    }

    mutating func update(done: Int) {
        let now = ContinuousClock.now
        if interactive {
            // Redrawing on every result would cost more than the tasks themselves.
            if let lastDraw, now - lastDraw < .milliseconds(50), done < total { return }
            lastDraw = now
            write("\r" + line(done: done, now: now))
        } else {
            let tenth = done * 10 / max(total, 1)
            guard tenth > lastTenth else { return }
            lastTenth = tenth
            write(line(done: done, now: now) + "\n")
        }
    }

    mutating func finish(done: Int) {
        if interactive {
            write("\r" + line(done: done, now: .now) + "\n")
        }
    }

    private func line(done: Int, now: ContinuousClock.Instant) -> String {
        let width = 30
        let filled = total > 0 ? done * width / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let elapsed = (now - started).seconds
        let rate = elapsed > 0 ? Int((Double(done) / elapsed).rounded()) : 0
        return "[\(bar)] \(done)/\(total)  \(Format.grouped(rate)) tasks/s"
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

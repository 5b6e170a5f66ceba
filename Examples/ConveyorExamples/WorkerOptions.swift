import ArgumentParser
import Conveyor
import ConveyorPrometheus
import ConveyorWorker
import Logging

/// The command-line options of a worker for the examples, shared by `conveyor worker` and
/// `conveyor-examples-worker` so both read them the same way.
public struct WorkerOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "Comma-separated queues to consume.")
    public var queues: String = "celery"

    @Option(name: .long, help: "Tasks run at once.")
    public var concurrency: Int = 8

    @Option(name: .long, help: "Seconds a claim lasts without a heartbeat (a crashed worker's tasks rerun after it).")
    public var lease: Double = 30

    @Option(name: .long, help: "Seconds running tasks get to finish on shutdown.")
    public var grace: Double = 30

    @Option(name: .long, help: "Fleet-wide rate limit of the --limit-tasks, e.g. 20/s, 10/m, 1000/h.")
    public var rateLimit: String?

    @Option(name: .long, help: "Fleet-wide cap on runs at once of each of the --limit-tasks.")
    public var maxRunning: Int?

    @Option(name: .long, help: "Comma-separated example tasks that --rate-limit and --max-running apply to.")
    public var limitTasks: String = "examples.limited"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "info"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A periodic task (repeatable): name=NAME[,task=TASK],every=INTERVAL|cron=EXPR[,kwargs=JSON][,queue=Q][,catchup=true].",
            discussion:
                "For example name=tick,task=examples.noop,every=1s or name=nightly,task=examples.noop,cron=0 3 * * *"))
    public var periodic: [String] = []

    @Option(name: .long, help: "Seconds the periodic scheduler's leader lease lasts (failover time).")
    public var periodicLease: Double = 5

    @Option(
        name: .long,
        help:
            "Serve the worker's metrics for Prometheus at http://HOST:PORT/metrics (off unless given; 0: any free port)."
    )
    public var metricsPort: Int?

    @Option(name: .long, help: "Address the metrics endpoint binds: 127.0.0.1, or 0.0.0.0 in a container.")
    public var metricsHost: String = "127.0.0.1"

    public init() {}

    /// Rejects values a worker cannot run with, before anything connects.
    ///
    /// - Throws: `ValidationError` naming the option.
    public func validate() throws {
        if queueNames.isEmpty { throw ValidationError("--queues names no queue") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if !(lease > 0) || !lease.isFinite { throw ValidationError("--lease must be a positive number of seconds") }
        if !(grace >= 0) || !grace.isFinite { throw ValidationError("--grace must be zero or more seconds") }
        var names = Set<String>()
        for spec in periodic {
            do {
                guard names.insert(try PeriodicTask(spec: spec).name).inserted else {
                    throw ValidationError("--periodic: two schedules are named alike in '\(spec)'")
                }
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("--periodic: \(error)")
            }
        }
        if !(periodicLease > 0) || !periodicLease.isFinite {
            throw ValidationError("--periodic-lease must be a positive number of seconds")
        }
        if let rateLimit {
            do {
                _ = try RateLimit(rateLimit)
            } catch {
                throw ValidationError("--rate-limit: \(error)")
            }
        }
        if let maxRunning, maxRunning < 1 { throw ValidationError("--max-running must be at least 1") }
        if let metricsPort, !(0...65_535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be a TCP port (0-65535)")
        }
        if metricsHost.isEmpty { throw ValidationError("--metrics-host names no address") }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError(
                "--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// ``queues`` split at commas, blanks dropped.
    public var queueNames: [String] {
        queues.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// ``logLevel`` parsed (`info` if it does not parse; ``validate()`` refuses that first).
    public var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .info }

    /// The worker configuration these options describe, on the servers of `conveyor`. Heartbeats come every
    /// third of the lease, at most every 5 s, so that a short lease is renewed in time.
    public func configuration(conveyor: ConveyorConfiguration) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(
            conveyor: conveyor, queues: queueNames, concurrency: concurrency,
            lease: .milliseconds(Int64(lease * 1000)),
            heartbeatInterval: .milliseconds(Int64(min(5, lease / 3) * 1000)),
            gracePeriod: .milliseconds(Int64(grace * 1000)))
        // validate() has parsed every spec already.
        configuration.periodic = periodic.compactMap { try? PeriodicTask(spec: $0) }
        configuration.periodicLease = .milliseconds(Int64(periodicLease * 1000))
        return configuration
    }

    /// The options the ``limitedTaskNames`` run under: ``rateLimit`` and ``maxRunning`` (``validate()`` checked
    /// them).
    public var limitedOptions: TaskRunOptions {
        TaskRunOptions(rateLimit: rateLimit.flatMap { try? RateLimit($0) }, maxRunning: maxRunning)
    }

    /// ``limitTasks`` split at commas, blanks dropped.
    public var limitedTaskNames: Set<String> {
        Set(limitTasks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// The Prometheus endpoint ``metricsPort`` asks for, with swift-metrics pointed at its registry; `nil` when the
    /// option is not given. Call once per process, after ``bootstrapLogging()`` and before the worker is made (it
    /// makes its metrics when it starts).
    public func metricsEndpoint(logger: Logger) -> MetricsEndpoint? {
        metricsPort.map { port in
            MetricsEndpoint(registry: MetricsEndpoint.bootstrap(), host: metricsHost, port: port, logger: logger)
        }
    }

    /// Sends every log line at ``level`` or above to standard error. Call once per process, before any logger is
    /// made.
    public func bootstrapLogging() {
        let level = level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

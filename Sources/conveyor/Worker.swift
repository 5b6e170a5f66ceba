import ArgumentParser
import ConveyorExamples
import Logging

/// `conveyor worker`: a worker for the example tasks, the same as `conveyor-examples-worker`.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a worker for the example tasks (examples.noop, add, sleep, fail, progress, record).",
        discussion: """
            Runs until SIGTERM or SIGINT, then stops taking messages and gives running tasks --grace seconds to \
            finish before cancelling and requeueing them. Logs go to standard error.
            """)

    @OptionGroup var options: WorkerOptions
    @OptionGroup var servers: ServerOptions

    func run() async throws {
        options.bootstrapLogging()
        let logger = Logger(label: "conveyor.worker")
        let conveyor = servers.configuration(logger: logger)
        do {
            try await Examples.runWorker(
                options.configuration(conveyor: conveyor), logger: logger, limited: options.limitedOptions,
                limitedTasks: options.limitedTaskNames, metrics: options.metricsEndpoint(logger: logger))
        } catch {
            if CLI.isArgumentParserExit(error) { throw error }
            throw CLI.fail(CLI.describe(error, configuration: conveyor, connecting: false))
        }
    }
}

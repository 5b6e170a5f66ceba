import ArgumentParser
import Conveyor
import ConveyorExamples
import ConveyorWorker
import Foundation
import Logging

/// `conveyor-examples-worker`: a worker that runs the example tasks (examples.noop, add, sleep, fail, progress,
/// record) and generators (examples.count, tokens). Servers come from `CONVEYOR_BROKER_URL` and `CONVEYOR_REDIS_URL`.
@main
struct ExamplesWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-examples-worker",
        abstract: "Run a Conveyor worker for the example tasks.",
        discussion:
            "Servers: CONVEYOR_BROKER_URL, CONVEYOR_REDIS_URL (local defaults). Stops gracefully on SIGTERM/SIGINT.")

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        options.bootstrapLogging()
        let logger = Logger(label: "conveyor.worker")
        var conveyor = ConveyorConfiguration.fromEnvironment()
        conveyor.logger = logger
        try await Examples.runWorker(
            options.configuration(conveyor: conveyor), logger: logger, limited: options.limitedOptions,
            limitedTasks: options.limitedTaskNames, metrics: options.metricsEndpoint(logger: logger))
    }
}

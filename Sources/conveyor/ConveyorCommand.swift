import ArgumentParser

/// `conveyor`: run the local servers and an example worker, submit tasks, read their states and results, look at
/// workers and queues, and run the demo.
@main
struct ConveyorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "Conveyor's command-line tool: servers, worker, tasks, inspection, demo.",
        discussion: """
            Servers come from CONVEYOR_BROKER_URL (several URLs separated by commas) and CONVEYOR_REDIS_URL, \
            defaulting to the local ones `conveyor servers up` starts; --broker-url and --redis-url override them. \
            A command that cannot reach a server prints one line naming it and exits with status 1.
            """,
        subcommands: [
            Servers.self, Worker.self, Submit.self, Status.self, Result.self, Cancel.self, Inspect.self, Demo.self,
            Stream.self, Gateway.self,
        ])
}

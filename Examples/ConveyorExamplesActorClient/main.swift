import ArgumentParser
import Conveyor
import ConveyorExamples
import Foundation
import Logging

/// `conveyor-examples-actor-client`: spawns (or finds) the named example `Counter` and increments it, from a
/// process of its own: what the actor tests run several of at once. Prints one JSON line:
/// `{"actor": <id>, "last": <count after its last increment>}`.
@main
struct ExamplesActorClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-examples-actor-client",
        abstract: "Spawn or find a named example Counter and increment it.",
        discussion: "Servers: CONVEYOR_BROKER_URL, CONVEYOR_REDIS_URL, CONVEYOR_PREFIX (local defaults).")

    @Option(help: "The counter's name.") var name: String
    @Option(help: "Its namespace.") var namespace: String = "default"
    @Option(help: "Increments to make.") var increments: Int = 0
    @Option(help: "Increments in flight at once.") var inFlight: Int = 50

    func run() async throws {
        var conveyor = ConveyorConfiguration.fromEnvironment()
        conveyor.logger.logLevel = .warning
        let system = try await ConveyorActorSystem.connect(conveyor)
        do {
            let counter = try await system.spawn(
                Counter.self, .init(),
                options: .init(
                    name: name, namespace: namespace, getIfExists: true, lifetime: .detached, maxRestarts: -1))
            var last = 0
            var next = 0
            try await withThrowingTaskGroup(of: Int.self) { group in
                while next < min(inFlight, increments) {
                    group.addTask { try await counter.increment() }
                    next += 1
                }
                while let value = try await group.next() {
                    last = max(last, value)
                    if next < increments {
                        group.addTask { try await counter.increment() }
                        next += 1
                    }
                }
            }
            print(#"{"actor": "\#(counter.id.rawValue)", "last": \#(last)}"#)
        } catch {
            await system.close()
            throw error
        }
        await system.close()
    }
}

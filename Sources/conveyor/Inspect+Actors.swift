import ArgumentParser
import Conveyor
import Foundation

extension Inspect {
    /// `conveyor inspect actors`: the live actors from the registry in Redis, with their mailboxes' depths.
    struct Actors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the live actors: namespace, name, type, host, state, restarts, queued calls.",
            discussion: """
                State is the record's status: pending (no host yet, or its host left), alive. Queued counts the \
                calls waiting in the actor's mailbox, not those its host runs.
                """)

        @Option(help: "Only the actors of this namespace.")
        var namespace: String?

        @OptionGroup var output: OutputOptions
        @OptionGroup var servers: ServerOptions

        struct Row {
            var record: ActorRecord
            var queued: Int?
        }

        func run() async throws {
            CLI.bootstrapLogging()
            let namespace = namespace
            let rows: [Row] = try await CLI.withClient(servers) { client in
                let system = ConveyorActorSystem(client: client)
                var rows: [Row] = []
                for record in try await system.store.liveRecords()
                where namespace == nil || record.namespace == namespace {
                    let info = try await client.broker.queueInfo(ConveyorActorID(record.id).queue)
                    rows.append(Row(record: record, queued: info?.messageCount))
                }
                return rows
            }
            if output.json {
                CLI.printJSON(.array(rows.map(Self.json)))
                return
            }
            guard !rows.isEmpty else {
                print("no live actors")
                return
            }
            print(
                Format.table(
                    ["NAMESPACE", "NAME", "TYPE", "HOST", "STATE", "RESTARTS", "QUEUED", "ID"],
                    rows.map { row in
                        let r = row.record
                        return [
                            r.namespace, r.name.isEmpty ? "-" : r.name, r.type, r.host.isEmpty ? "-" : r.host,
                            r.status, "\(r.restarts)", row.queued.map { Format.grouped($0) } ?? "(missing)", r.id,
                        ]
                    }))
        }

        static func json(_ row: Row) -> JSONValue {
            let r = row.record
            var object: [String: JSONValue] = [
                "id": .string(r.id), "namespace": .string(r.namespace), "name": .string(r.name),
                "type": .string(r.type), "host": .string(r.host), "state": .string(r.status),
                "restarts": .int(Int64(r.restarts)), "max_restarts": .int(Int64(r.options.maxRestarts)),
                "calls": .int(Int64(r.calls)),
            ]
            object["queued"] = row.queued.map { .int(Int64($0)) }
            return .object(object)
        }
    }
}

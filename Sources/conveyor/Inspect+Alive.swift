import ArgumentParser
import Conveyor
import ConveyorIO
import ConveyorRedis
import Foundation
import Logging

extension Inspect {
    /// `conveyor inspect alive`: a health probe for a worker's container or pod. It reads the heartbeat records in
    /// Redis only (no broker connection, so a probe costs one short Redis connection), and exits 0 when a worker on
    /// `--host` (this machine's host name unless given: in a container, the container's) beat within `--max-age`.
    struct Alive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit 0 if a worker on this host beat recently (a liveness/readiness probe), else 1.",
            discussion: """
                Reads the workers' heartbeat records (P worker:<id>) from CONVEYOR_REDIS_URL and compares their \
                last beat with Redis's own clock. A worker beats every 5 s; its record disappears 15 s after its \
                last beat and at a clean shutdown. Prints the matching workers' ids. Exit status 1 (with one line \
                on standard error) when none matches or Redis cannot be reached.
                """)

        @Option(help: "The worker's host name (default: this machine's, as the worker records it).")
        var host: String?

        @Option(
            name: .customLong("max-age"),
            help: ArgumentHelp("Seconds since the last beat that still count as alive.", valueName: "seconds"))
        var maxAge: Double = 15

        @OptionGroup var servers: ServerOptions

        func validate() throws {
            guard maxAge > 0, maxAge.isFinite else { throw ValidationError("--max-age must be a positive number") }
            if host?.isEmpty == true { throw ValidationError("--host is empty") }
        }

        func run() async throws {
            CLI.bootstrapLogging()
            let host = host ?? ProcessInfo.processInfo.hostName
            let conveyor = servers.configuration(logger: Logger(label: "conveyor.cli"))
            // A probe must answer within its own timeout: one short attempt, no long waits.
            let policy = ReconnectPolicy(connectTimeout: .seconds(3), operationTimeout: .seconds(5))
            let alive: [String]
            do {
                let redis = try await RedisClient.connect(
                    try RedisConfiguration(url: conveyor.redisURL, policy: policy, logger: conveyor.logger))
                do {
                    alive = try await Self.aliveWorkers(
                        on: host, maxAgeMs: Int64(min(maxAge, Duration.clampedSecondsLimit) * 1000), redis: redis,
                        conveyor: conveyor)
                    await redis.close()
                } catch {
                    await redis.close()
                    throw error
                }
            } catch {
                throw CLI.fail(CLI.describe(error, configuration: conveyor, connecting: true))
            }
            guard !alive.isEmpty else {
                throw CLI.fail("no worker on host '\(host)' beat within \(Format.seconds(maxAge))")
            }
            for id in alive { print(id) }
        }

        /// The ids of the workers on `host` whose last beat is at most `maxAgeMs` old by Redis's clock (the clock
        /// the heartbeat script stamps with, so the probe's own clock does not matter).
        static func aliveWorkers(
            on host: String, maxAgeMs: Int64, redis: RedisClient, conveyor: ConveyorConfiguration
        ) async throws -> [String] {
            let store = TaskStore(
                redis: redis,
                configuration: .init(
                    keys: RedisKeys(prefix: conveyor.keyPrefix, resultPrefix: conveyor.resultKeyPrefix)))
            let workers = try await store.workers()
            let time = try await redis.send(RedisCommand("TIME"))
            guard let parts = time.array, parts.count == 2, let seconds = parts[0].string.flatMap({ Int64($0) }),
                let micros = parts[1].string.flatMap({ Int64($0) })
            else { throw UnexpectedReply(description: "Redis answered TIME with \(time)") }
            let nowMs = seconds * 1000 + micros / 1000
            return workers.filter { worker in
                guard worker.host == host, let beat = worker.lastBeatMs else { return false }
                return nowMs - beat <= maxAgeMs
            }.map(\.id)
        }
    }

    /// A Redis reply the probe cannot read.
    struct UnexpectedReply: Error, CustomStringConvertible {
        var description: String
    }
}

import ConveyorIO
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Chaos tests restart and kill servers. Doing that to the shared servers would break every other test running in
// parallel, so each chaos test starts its own RabbitMQ or Redis through `scripts/servers`, with its own state folder
// (`<repo>/.conveyor/private/<id>`), ports and Erlang node name.

/// A `scripts/servers` step (or a CLI it ran) that failed, with everything it printed.
public struct PrivateServerError: Error, CustomStringConvertible {
    /// The command line that failed, e.g. `scripts/servers up rabbit`.
    public let command: String
    /// Its exit status.
    public let exitStatus: Int32
    /// Its standard output and standard error, interleaved.
    public let output: String

    public var description: String {
        "\(command) failed with exit status \(exitStatus):\n\(output)"
    }
}

/// A private RabbitMQ node for tests that restart, stop or kill the broker.
///
/// Starting one takes about 8 seconds: use it only in tests that need to disturb the broker.
///
/// - Important: Call ``shutdown()`` at the end of the test (also when it fails, e.g. with `defer`-style cleanup in a
///   `do`/`catch`). If the object is released without it, its `deinit` kills the node with SIGKILL as a last resort.
public final class PrivateRabbitMQ: Sendable {
    /// The broker URL, `amqp://guest:guest@127.0.0.1:PORT/`.
    public let url: String
    /// The Erlang node name, e.g. `conveyor-1a2b3c4d@localhost`.
    public let nodeName: String
    /// The AMQP port.
    public let port: Int
    /// The state folder (config, data, logs).
    public let folder: URL
    private let servers: ServersScript
    private let isShutDown = LockedValue(false)

    private init(port: Int, nodeName: String, folder: URL, servers: ServersScript) {
        self.url = "amqp://guest:guest@127.0.0.1:\(port)/"
        self.nodeName = nodeName
        self.port = port
        self.folder = folder
        self.servers = servers
    }

    deinit {
        guard !isShutDown.current else { return }
        PrivateServers.killRecorded(pidFile: folder.appendingPathComponent("rabbitmq/rabbit.pid"), command: "beam")
        try? FileManager.default.removeItem(at: folder)
    }

    /// Starts a node on free ports and returns once it accepts AMQP connections.
    ///
    /// - Throws: ``PrivateServerError`` with the script's output (log tails included) when it does not come up.
    public static func start() async throws -> PrivateRabbitMQ {
        try await PrivateServers.withFreshInstance { id, folder in
            let port = try PrivatePorts.unused()
            let nodeName = "conveyor-\(id)@localhost"
            let servers = ServersScript(environment: [
                "CONVEYOR_HOME": folder.path,
                "CONVEYOR_AMQP_PORT": String(port),
                "CONVEYOR_RABBIT_DIST_PORT": String(try PrivatePorts.unused()),
                "CONVEYOR_RABBIT_NODE": nodeName,
                "CONVEYOR_RABBIT_MANAGEMENT": "0",
            ])
            do {
                _ = try await servers.run(["up", "rabbit"])
            } catch {
                _ = try? await servers.run(["kill-rabbit"])
                throw error
            }
            return PrivateRabbitMQ(port: port, nodeName: nodeName, folder: folder, servers: servers)
        }
    }

    /// Stops the node gracefully and starts it again on the same ports; returns when it answers again.
    /// Durable queues and their persistent messages are kept.
    ///
    /// - Throws: ``PrivateServerError`` when a step fails.
    public func restart() async throws {
        _ = try await servers.run(["restart-rabbit"])
    }

    /// Stops the node gracefully and leaves it down until ``startAgain()``.
    ///
    /// - Throws: ``PrivateServerError`` when it does not stop.
    public func stop() async throws {
        _ = try await servers.run(["down", "rabbit"])
    }

    /// Starts the node again after ``stop()`` or ``kill()``, with its data; returns when it answers.
    ///
    /// - Throws: ``PrivateServerError`` when it does not come up.
    public func startAgain() async throws {
        _ = try await servers.run(["up", "rabbit"])
    }

    /// Kills the Erlang VM with SIGKILL, like a crash; ``startAgain()`` brings it back.
    ///
    /// - Throws: ``PrivateServerError`` when the script fails.
    public func kill() async throws {
        _ = try await servers.run(["kill-rabbit"])
    }

    /// Force-closes (`rabbitmqctl close_connection`) every connection whose client property `connection_name`
    /// equals `named`, as an operator or a load balancer would.
    ///
    /// The name is matched in rabbitmqctl's table output, so it must not contain `"` or `\`.
    /// - Returns: how many connections were closed (0 when none had that name).
    /// - Throws: ``PrivateServerError`` when rabbitmqctl fails.
    @discardableResult
    public func closeConnections(named: String) async throws -> Int {
        let listing = try await rabbitmqctl([
            "list_connections", "pid", "client_properties", "-q", "--no-table-headers",
        ])
        let marker = "{\"connection_name\",\"\(named)\"}"
        let pids = listing.split(separator: "\n").filter { $0.contains(marker) }.compactMap {
            $0.split(separator: "\t").first.map(String.init)
        }
        for pid in pids {
            _ = try await rabbitmqctl(["close_connection", pid, "closed by test"])
        }
        return pids.count
    }

    /// Runs `rabbitmqctl -n <node> ARGS` against this node (with the right Erlang cookie) and returns its output.
    ///
    /// - Throws: ``PrivateServerError`` when rabbitmqctl exits non-zero.
    public func rabbitmqctl(_ args: [String]) async throws -> String {
        try await servers.run(["rabbitmqctl"] + args)
    }

    /// Kills the node and deletes its folder. Safe to call more than once.
    ///
    /// A graceful stop would only slow the test down: the data is deleted right after.
    public func shutdown() async {
        guard PrivateServers.firstTime(isShutDown) else { return }
        _ = try? await servers.run(["kill-rabbit"])
        try? FileManager.default.removeItem(at: folder)
    }
}

/// A private Redis for tests that restart, stop or kill it.
///
/// - Important: Call ``shutdown()`` at the end of the test. If the object is released without it, its `deinit`
///   kills the server with SIGKILL as a last resort.
public final class PrivateRedis: Sendable {
    /// How often the append-only file is flushed to disk (`appendfsync`).
    public enum AppendFsync: String, Sendable {
        /// After every write: nothing acknowledged is lost even by ``PrivateRedis/kill()``.
        case always
        /// Once a second (the default, as in production): a kill may lose the last second.
        case everysec
        /// When the OS decides.
        case no
    }

    /// The Redis URL, `redis://127.0.0.1:PORT/0`.
    public let url: String
    /// The port.
    public let port: Int
    /// The state folder (config, append-only file, log).
    public let folder: URL
    private let servers: ServersScript
    private let isShutDown = LockedValue(false)

    private init(port: Int, folder: URL, servers: ServersScript) {
        self.url = "redis://127.0.0.1:\(port)/0"
        self.port = port
        self.folder = folder
        self.servers = servers
    }

    deinit {
        guard !isShutDown.current else { return }
        PrivateServers.killRecorded(pidFile: folder.appendingPathComponent("redis/redis.pid"), command: "redis")
        try? FileManager.default.removeItem(at: folder)
    }

    /// Starts a Redis with the append-only file on, on a free port; returns once it answers PING.
    ///
    /// - Throws: ``PrivateServerError`` with the script's output when it does not come up.
    public static func start(appendfsync: AppendFsync = .everysec) async throws -> PrivateRedis {
        try await PrivateServers.withFreshInstance { _, folder in
            let port = try PrivatePorts.unused()
            let servers = ServersScript(environment: [
                "CONVEYOR_HOME": folder.path,
                "CONVEYOR_REDIS_PORT": String(port),
                "CONVEYOR_REDIS_APPENDFSYNC": appendfsync.rawValue,
            ])
            do {
                _ = try await servers.run(["up", "redis"])
            } catch {
                _ = try? await servers.run(["kill-redis"])
                throw error
            }
            return PrivateRedis(port: port, folder: folder, servers: servers)
        }
    }

    /// Shuts Redis down cleanly (flushing the append-only file) and starts it again on the same port; returns when
    /// it answers again, with its data.
    ///
    /// - Throws: ``PrivateServerError`` when a step fails.
    public func restart() async throws {
        _ = try await servers.run(["restart-redis"])
    }

    /// Shuts Redis down cleanly and leaves it down until ``startAgain()``.
    ///
    /// - Throws: ``PrivateServerError`` when it does not stop.
    public func stop() async throws {
        _ = try await servers.run(["down", "redis"])
    }

    /// Starts Redis again after ``stop()`` or ``kill()``, with its data; returns when it answers.
    ///
    /// - Throws: ``PrivateServerError`` when it does not come up.
    public func startAgain() async throws {
        _ = try await servers.run(["up", "redis"])
    }

    /// Kills Redis with SIGKILL, like a crash; ``startAgain()`` brings it back.
    ///
    /// - Throws: ``PrivateServerError`` when the script fails.
    public func kill() async throws {
        _ = try await servers.run(["kill-redis"])
    }

    /// Runs `redis-cli -p PORT ARGS` against this server and returns its output, e.g. `["CLIENT", "KILL", ...]`.
    ///
    /// - Throws: ``PrivateServerError`` when redis-cli exits non-zero (it exits 0 for most Redis error replies).
    public func redisCLI(_ args: [String]) async throws -> String {
        try await ProcessRunner.run(
            executable: "/usr/bin/env", arguments: ["redis-cli", "-h", "127.0.0.1", "-p", String(port)] + args,
            environment: [:])
    }

    /// Kills the server and deletes its folder. Safe to call more than once.
    public func shutdown() async {
        guard PrivateServers.firstTime(isShutDown) else { return }
        _ = try? await servers.run(["kill-redis"])
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Free TCP ports on 127.0.0.1 for private servers, and for tests that need a port nobody listens on.
public enum PrivatePorts {
    // Below Linux's ephemeral range (32768-60999), so an outgoing connection's local port never takes one between
    // the check and the server's bind; above the usual service ports. 25672 is the default node's Erlang port.
    private static let range = 20000..<32000
    private static let handedOut = LockedValue(Set<Int>())

    /// A port on 127.0.0.1 that nothing listens on now and that this process has not handed out before.
    ///
    /// Another process could still take it before it is used: ``PrivateRabbitMQ/start()`` and
    /// ``PrivateRedis/start()`` retry with new ports when `scripts/servers` reports a port as taken.
    /// - Throws: ``PrivateServerError`` if no free port is found after many tries.
    public static func unused() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: range)
            guard port != 25672, isFree(port) else { continue }
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw PrivateServerError(command: "PrivatePorts.unused()", exitStatus: 1, output: "no free port in \(range)")
    }

    /// Whether a listening socket can bind 127.0.0.1:`port` right now: nothing listens there, and no recently closed
    /// connection lingers on it (TIME_WAIT).
    public static func isFree(_ port: Int) -> Bool {
        withLoopbackSocket(port: port) { fd, address, length in bind(fd, address, length) == 0 } ?? false
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
    public static func isListening(_ port: Int) -> Bool {
        withLoopbackSocket(port: port) { fd, address, length in connect(fd, address, length) == 0 } ?? false
    }

    /// Runs `body` with a new TCP socket and the address 127.0.0.1:`port`; nil if no socket could be made.
    private static func withLoopbackSocket(
        port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
    ) -> Bool? {
        guard let port16 = UInt16(exactly: port) else { return nil }
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port16.bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}

/// Folders and clean-up shared by the private servers.
enum PrivateServers {
    /// `scripts/servers` exits with this when a port or node name is taken by something else.
    static let exitTaken: Int32 = 3
    static let sweptStaleFolders = LockedValue(false)

    /// Sets `flag` and returns whether it was clear before: true for exactly one caller.
    static func firstTime(_ flag: LockedValue<Bool>) -> Bool {
        flag.withLock { done in
            let first = !done
            done = true
            return first
        }
    }

    static var root: URL {
        TestServers.repositoryRoot.appendingPathComponent(".conveyor/private", isDirectory: true)
    }

    /// Makes a fresh folder and runs `body` with it, retrying with new ports (a new folder) when another process took
    /// a port first. Removes the folder when `body` fails.
    static func withFreshInstance<T>(_ body: (String, URL) async throws -> T) async throws -> T {
        await sweepStaleFolders()
        var attempt = 0
        while true {
            attempt += 1
            let id = UUID().uuidString.prefix(8).lowercased()
            let folder = root.appendingPathComponent(id, isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try String(getpid()).write(
                to: folder.appendingPathComponent("owner.pid"), atomically: true, encoding: .utf8)
            do {
                return try await body(id, folder)
            } catch let error as PrivateServerError where error.exitStatus == exitTaken && attempt < 5 {
                try? FileManager.default.removeItem(at: folder)
            } catch {
                try? FileManager.default.removeItem(at: folder)
                throw error
            }
        }
    }

    /// Kills the servers of folders whose test process is gone (it crashed or was interrupted before `shutdown()`),
    /// then deletes those folders. Runs once per process.
    static func sweepStaleFolders() async {
        guard firstTime(sweptStaleFolders) else { return }
        let folders = (try? FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)) ?? []
        for folder in folders {
            let owner = (try? String(contentsOf: folder.appendingPathComponent("owner.pid"), encoding: .utf8))
                .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            // A folder without an owner is one being created right now by another process: leave it alone.
            guard let owner, kill(owner, 0) != 0, errno == ESRCH else { continue }
            let servers = ServersScript(environment: ["CONVEYOR_HOME": folder.path])
            _ = try? await servers.run(["kill-rabbit"])
            _ = try? await servers.run(["kill-redis"])
            try? FileManager.default.removeItem(at: folder)
        }
    }

    /// Sends SIGKILL to the process recorded in `pidFile` if it is alive and its command line contains `command`
    /// (a stale pid file may name an unrelated process by now). Synchronous: used from `deinit`.
    static func killRecorded(pidFile: URL, command: String) {
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { return }
        let commandLine = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        guard String(decoding: commandLine, as: UTF8.self).contains(command) else { return }
        _ = kill(pid, SIGKILL)
    }
}

/// `scripts/servers` with a fixed environment.
struct ServersScript: Sendable {
    let environment: [String: String]

    /// Runs `scripts/servers ARGS` and returns what it printed.
    func run(_ arguments: [String]) async throws -> String {
        let script = TestServers.repositoryRoot.appendingPathComponent("scripts/servers").path
        return try await ProcessRunner.run(
            executable: "/bin/bash", arguments: [script] + arguments, environment: environment,
            displayName: (["scripts/servers"] + arguments).joined(separator: " "))
    }
}

/// A private RabbitMQ and a private Redis for one test: both started, `body` run, both shut down whatever it did.
/// For tests that restart or kill the servers of a whole deployment.
///
/// - Throws: what starting either server throws, or what `body` throws (after the shutdown).
public func withPrivateServers<T>(
    redisAppendfsync: PrivateRedis.AppendFsync = .everysec,
    _ body: (PrivateRabbitMQ, PrivateRedis) async throws -> T
) async throws -> T {
    let rabbit = try await PrivateRabbitMQ.start()
    let redis: PrivateRedis
    do {
        redis = try await PrivateRedis.start(appendfsync: redisAppendfsync)
    } catch {
        await rabbit.shutdown()
        throw error
    }
    let outcome: Result<T, any Error>
    do {
        outcome = .success(try await body(rabbit, redis))
    } catch {
        outcome = .failure(error)
    }
    await redis.shutdown()
    await rabbit.shutdown()
    return try outcome.get()
}

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a child process and waits for it without blocking a thread of the Swift concurrency pool.
///
/// Not Foundation's `Process`: on Linux it detects an exit by EOF on a socket the child inherits, so a daemon the
/// child starts (our servers) can hold that socket and hide the exit for as long as the daemon runs; it then reaps on
/// one shared thread with a blocking `waitpid`, which serializes unrelated children; and it leaks each `Process`,
/// which drowns LeakSanitizer's report. Here the child gets only stdin (`/dev/null`) and stdout/stderr (a temporary
/// file), and a thread of its own waits for it.
public enum ProcessRunner {
    /// Runs `executable` with `arguments` and the current environment plus `environment`, and returns its standard
    /// output and standard error, interleaved.
    ///
    /// - Throws: ``PrivateServerError`` when the process cannot be started or exits non-zero.
    public static func run(
        executable: String, arguments: [String], environment: [String: String] = [:], displayName: String? = nil
    ) async throws -> String {
        let name = displayName ?? ([executable] + arguments).joined(separator: " ")
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-servers-\(UUID().uuidString).log").path
        defer { unlink(outputPath) }
        let mergedEnvironment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }

        let pid = try spawn(
            executable: executable, arguments: arguments, environment: mergedEnvironment, outputPath: outputPath,
            name: name)
        let status = await waitForExit(pid)
        let output = readFile(outputPath)
        guard status == 0 else {
            throw PrivateServerError(command: name, exitStatus: status, output: output)
        }
        return output
    }

    /// Starts `executable` in the background (its own process group, output to a temporary file) and returns at
    /// once; the caller signals it and awaits its exit.
    ///
    /// - Throws: ``PrivateServerError`` when the process cannot be started.
    public static func start(
        executable: String, arguments: [String], environment: [String: String] = [:]
    ) throws -> ChildProcess {
        let name = ([executable] + arguments).joined(separator: " ")
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-child-\(UUID().uuidString).log").path
        let mergedEnvironment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pid = try spawn(
            executable: executable, arguments: arguments, environment: mergedEnvironment, outputPath: outputPath,
            name: name)
        return ChildProcess(pid: pid, outputPath: outputPath)
    }

    /// A process started by ``start(executable:arguments:environment:)``.
    public struct ChildProcess: Sendable {
        public let pid: Int32
        /// Its standard output and standard error, interleaved.
        public let outputPath: String

        /// Sends `signal` (`SIGTERM`, `SIGKILL`, ...).
        public func signal(_ signal: Int32) { _ = kill(pid, signal) }

        /// Waits for the exit; returns the exit status (128 + the signal number if a signal ended it).
        public func exitStatus() async -> Int32 { await ProcessRunner.waitForExit(pid) }

        /// What it printed so far.
        public var output: String { ProcessRunner.readFile(outputPath) }

        /// Deletes the output file.
        public func removeOutput() { unlink(outputPath) }
    }

    private static func spawn(
        executable: String, arguments: [String], environment: [String: String], outputPath: String, name: String
    ) throws -> pid_t {
        #if os(Linux)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours (sockets of the connections under test, pipes) may leak into the child or its daemons.
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test process ignores SIGPIPE, and an ignored signal stays ignored across exec: give the child the
        // defaults back, and an empty signal mask. Its own process group keeps a Ctrl-C of the tests off the servers.
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        sigaddset(&defaultSignals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw PrivateServerError(
                command: name, exitStatus: -1, output: "posix_spawn failed: \(String(cString: strerror(rc)))")
        }
        return pid
        #else
        throw PrivateServerError(command: name, exitStatus: -1, output: "private servers are only supported on Linux")
        #endif
    }

    #if os(Linux)
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module does not export.
    private static let addCloseFrom: AddCloseFrom? = dlsym(
        UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np"
    ).map { unsafeBitCast($0, to: AddCloseFrom.self) }

    /// Adds file actions that close every descriptor from 3 up in the child.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        if let addCloseFrom, addCloseFrom(&actions, 3) == 0 { return }
        // Older glibc: close what is open now. glibc ignores a close action for a descriptor closed in the meantime.
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap(Int32.init) where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }
    #endif

    /// The exit status of `pid` (128 + the signal number if a signal ended it), reaped on a thread of its own.
    static func waitForExit(_ pid: pid_t) async -> Int32 {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xff : 128 + signal)
            }
            thread.name = "conveyor-wait-\(pid)"
            thread.start()
        }
    }

    /// The file's bytes as text (invalid UTF-8 repaired); empty if it cannot be read.
    ///
    /// Read with read(2): `String(contentsOfFile:)` leaks its buffer on Linux, which LeakSanitizer reports.
    public static func readFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes.append(contentsOf: chunk[0..<count])
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

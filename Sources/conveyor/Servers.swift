import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `conveyor servers up|down|status`: the repository's `scripts/servers`, run in place of this process.
struct Servers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start, stop or show the local RabbitMQ and Redis (the repository's scripts/servers).",
        discussion: """
            The script is found through CONVEYOR_ROOT (the repository root), else by looking for scripts/servers \
            in the current directory and its parents, then next to this executable. Its output and exit status \
            are passed through; arguments after the action go to it too (`conveyor servers up redis`).
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case up, down, status
    }

    @Argument(help: "up, down or status.")
    var action: Action

    @Argument(
        parsing: .captureForPassthrough, help: "Further arguments for scripts/servers (rabbit, redis, --management).")
    var arguments: [String] = []

    func run() throws {
        let script = try Self.findScript()
        let argv = [script, action.rawValue] + arguments
        // exec, not a child process: the servers the script starts must not inherit a pipe we wait on, and the
        // script's output and exit status then reach the caller unchanged.
        fflush(nil)
        let cArguments = argv.map { strdup($0) } + [nil]
        execv(script, cArguments)
        let reason = String(cString: strerror(errno))
        cArguments.forEach { free($0) }
        throw CLI.fail("cannot run \(script): \(reason)")
    }

    static let relativePath = "scripts/servers"

    /// The path of `scripts/servers`.
    ///
    /// - Throws: `ExitCode.failure` after saying where it looked.
    static func findScript() throws -> String {
        let files = FileManager.default
        let environment = ProcessInfo.processInfo.environment
        if let root = environment["CONVEYOR_ROOT"], !root.isEmpty {
            let script = URL(fileURLWithPath: root).appendingPathComponent(relativePath).path
            guard files.isExecutableFile(atPath: script) else {
                throw CLI.fail("CONVEYOR_ROOT=\(root) has no executable \(relativePath)")
            }
            return script
        }
        var starts = [URL(fileURLWithPath: files.currentDirectoryPath)]
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            starts.append(executable.deletingLastPathComponent())
        }
        for start in starts {
            var directory = start.standardizedFileURL
            while true {
                let script = directory.appendingPathComponent(relativePath).path
                if files.isExecutableFile(atPath: script) { return script }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        throw CLI.fail(
            "cannot find \(relativePath) in \(files.currentDirectoryPath), next to this executable, or in their "
                + "parents; run this inside the Conveyor repository or set CONVEYOR_ROOT to it")
    }
}

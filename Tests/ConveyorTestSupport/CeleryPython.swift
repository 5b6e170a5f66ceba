import Foundation

/// The Python with celery and redis that the Celery interop tests run, as `scripts/celery-venv` creates it.
///
/// `make test` runs that script first and passes its python on in `CONVEYOR_CELERY_PYTHON`; a plain `swift test`
/// finds the same venv by the script's rule, so both see one interpreter with the pinned versions.
public enum CeleryPython {
    /// `CONVEYOR_CELERY_PYTHON` when set, else `celery-venv/bin/python` in the state folder (`CONVEYOR_HOME`, else
    /// `<repo>/.conveyor`), the path `scripts/celery-venv` creates.
    public static var path: String {
        let environment = ProcessInfo.processInfo.environment
        // Empty counts as unset, as `${VAR:-default}` does in the scripts.
        if let python = environment["CONVEYOR_CELERY_PYTHON"], !python.isEmpty { return python }
        let state =
            environment["CONVEYOR_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0, isDirectory: true) }
            ?? TestServers.repositoryRoot.appendingPathComponent(".conveyor", isDirectory: true)
        return state.appendingPathComponent("celery-venv/bin/python").path
    }

    /// Whether the interop tests run: ``path`` is an executable and `CONVEYOR_SKIP_CELERY` is not `1` (the switch
    /// with which `make test` leaves the venv out also skips the tests when an old venv is still there).
    public static var isAvailable: Bool {
        !skipRequested && FileManager.default.isExecutableFile(atPath: path)
    }

    /// Why an interop test was skipped, and how to get it to run (for `.enabled(if:_:)`, as `Comment(rawValue:)`).
    public static var skipMessage: String {
        if skipRequested { return "CONVEYOR_SKIP_CELERY=1 skips the Celery interop tests" }
        return
            "no Python with celery at \(path): run scripts/celery-venv (make test does), or set CONVEYOR_CELERY_PYTHON"
    }

    private static var skipRequested: Bool { ProcessInfo.processInfo.environment["CONVEYOR_SKIP_CELERY"] == "1" }
}

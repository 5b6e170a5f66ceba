import Foundation
import Logging

/// What a connection's owner thread drives: one C connection, opened, served and re-opened by a
/// ``ConnectionRunner``.
///
/// - Important: every method is called on the runner's thread only, which owns the C connection. Other threads
///   reach the driver through an ``Inbox`` and wake it through ``wakeup``.
public protocol ConnectionDriver: AnyObject, Sendable {
    /// Wakes the runner's thread from `poll`.
    var wakeup: Wakeup { get }
    /// Opens the connection and restores its session (login, topology, subscriptions). Throws when it cannot.
    func connect(timeout: Duration) throws
    /// Serves the open connection once: waits at most `maxWait` for I/O or wakeup, then handles what is ready.
    /// Throws when the connection is lost.
    func serve(maxWait: Duration) throws
    /// The connection was lost (or an attempt failed): settle in-flight work and close the C connection.
    func connectionLost(_ error: any Error)
    /// Called while disconnected, at least every `maxWait`: fail queued work whose deadline passed.
    func serveDisconnected(lastError: any Error)
    /// The runner is stopping for good: fail everything outstanding and free the C connection.
    func shutdown()
}

/// Runs a ``ConnectionDriver`` on its own thread under a ``ReconnectPolicy``: the only reconnect loop in Conveyor.
public final class ConnectionRunner: @unchecked Sendable {
    // Safe: `stopRequested` and `state` are guarded by `lock`; the driver is used only on the runner's thread.
    private let lock = Lock()
    private var stopRequested = false
    private var state: ConnectionState = .connecting
    private let driver: any ConnectionDriver
    private let policy: ReconnectPolicy
    private let logger: Logger
    private let name: String
    private let finished = DispatchSemaphore(value: 0)

    public enum ConnectionState: Sendable, Equatable {
        case connecting
        case connected
        case reconnecting(attempt: Int)
        case stopped
    }

    private init(name: String, driver: any ConnectionDriver, policy: ReconnectPolicy, logger: Logger) {
        self.name = name
        self.driver = driver
        self.policy = policy
        self.logger = logger
    }

    /// Starts the thread and makes the first connection attempt on it.
    ///
    /// - Throws: the error of the first attempt; then nothing is left running. Later losses are retried forever
    ///   (until ``stop()``) under `policy`.
    public static func start(
        name: String, driver: any ConnectionDriver, policy: ReconnectPolicy, logger: Logger
    ) async throws -> ConnectionRunner {
        IgnoreSIGPIPE.once()
        let runner = ConnectionRunner(name: name, driver: driver, policy: policy, logger: logger)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread { runner.run(firstAttempt: continuation) }
            thread.name = name
            thread.stackSize = 1 << 20
            thread.start()
        }
        return runner
    }

    public var connectionState: ConnectionState { lock.withLock { state } }

    private var isStopping: Bool { lock.withLock { stopRequested } }

    /// Stops the thread: outstanding work fails, the connection closes. Returns when the thread has finished.
    public func stop() async {
        let alreadyStopped = lock.withLock {
            let was = stopRequested
            stopRequested = true
            return was
        }
        driver.wakeup.signal()
        if alreadyStopped { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.finished.wait()
                self.finished.signal()
                continuation.resume()
            }
        }
    }

    private func setState(_ newState: ConnectionState) { lock.withLock { state = newState } }

    private func run(firstAttempt: CheckedContinuation<Void, any Error>) {
        defer {
            setState(.stopped)
            finished.signal()
        }
        do {
            try driver.connect(timeout: policy.connectTimeout)
        } catch {
            driver.connectionLost(error)
            driver.shutdown()
            firstAttempt.resume(throwing: error)
            return
        }
        setState(.connected)
        firstAttempt.resume()

        let servePoll = Duration.milliseconds(min(250, Int64(policy.heartbeat.seconds * 1000 / 4)))
        var connected = true
        var attempt = 0
        var lastError: any Error = ConnectionClosedError()
        while !isStopping {
            if connected {
                do {
                    try driver.serve(maxWait: servePoll)
                } catch {
                    connected = false
                    lastError = error
                    logger.warning("connection lost", metadata: ["connection": "\(name)", "error": "\(error)"])
                    driver.connectionLost(error)
                    setState(.reconnecting(attempt: 0))
                }
                continue
            }
            // Back off, still failing queued work as deadlines pass, then try again.
            let until = ContinuousClock.now + policy.backoff(attempt: attempt)
            while !isStopping, ContinuousClock.now < until {
                driver.serveDisconnected(lastError: lastError)
                let left = until - ContinuousClock.now
                let wait = min(left, .milliseconds(50))
                let r = Poller.wait([(driver.wakeup.readFD, true, false)], timeoutMilliseconds: wait.pollMilliseconds)
                if r.first?.readable == true { driver.wakeup.drain() }
            }
            if isStopping { break }
            do {
                try driver.connect(timeout: policy.connectTimeout)
                connected = true
                logger.info(
                    "reconnected", metadata: ["connection": "\(name)", "attempts": "\(attempt + 1)"])
                attempt = 0
                setState(.connected)
            } catch {
                lastError = error
                driver.connectionLost(error)
                attempt += 1
                setState(.reconnecting(attempt: attempt))
                if attempt == 1 || attempt % 20 == 0 {
                    logger.warning(
                        "reconnect failed",
                        metadata: ["connection": "\(name)", "attempt": "\(attempt)", "error": "\(error)"])
                }
            }
        }
        driver.shutdown()
    }
}

/// The connection was closed by its owner.
public struct ConnectionClosedError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the connection was closed" }
}

public enum IgnoreSIGPIPE {
    private static let done: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
    /// Writing to a socket the peer closed raises SIGPIPE, which would kill the process; Conveyor wants EPIPE.
    public static func once() { _ = done }
}

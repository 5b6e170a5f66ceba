import ConveyorIO

extension RedisContext {
    /// Waits until the socket is ready (readable, failed, or writable while output is pending), the wakeup fires, `maxWait` passes or `nextDeadline` comes.
    ///
    /// When callers were already settled in this pass (`settledThisPass`), it only looks and does not wait: they
    /// must get their answers now, not after the poll timeout. Drains the wakeup if it fired.
    ///
    /// - Returns: what `poll` saw on the socket.
    func waitForSocket(
        wakeup: Wakeup, maxWait: Duration, nextDeadline: ContinuousClock.Instant, settledThisPass: Bool
    ) -> PollResult {
        let now = ContinuousClock.now
        var wait = maxWait
        if settledThisPass {
            wait = .zero
        } else if nextDeadline < now + maxWait {
            wait = max(.zero, nextDeadline - now)
        }
        let ready = Poller.wait(
            [(fd, true, pendingOutput > 0), (wakeup.readFD, true, false)], timeoutMilliseconds: wait.pollMilliseconds)
        if ready[1].readable { wakeup.drain() }
        return ready[0]
    }
}

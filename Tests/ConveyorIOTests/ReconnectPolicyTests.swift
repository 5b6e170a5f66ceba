import Testing

@testable import ConveyorIO

@Suite struct ReconnectPolicyTests {
    @Test func backoffGrowsAndIsCapped() {
        let policy = ReconnectPolicy(initialBackoff: .milliseconds(100), maxBackoff: .seconds(1), jitter: 0)
        #expect(policy.backoff(attempt: 0) == .milliseconds(100))
        #expect(policy.backoff(attempt: 1) == .milliseconds(200))
        #expect(policy.backoff(attempt: 3) == .milliseconds(800))
        #expect(policy.backoff(attempt: 4) == .seconds(1))
        #expect(policy.backoff(attempt: 1000) == .seconds(1))
    }

    @Test func jitterStaysInItsBand() {
        let policy = ReconnectPolicy(initialBackoff: .seconds(1), maxBackoff: .seconds(1), jitter: 0.25)
        #expect(policy.backoff(attempt: 0, random: 0) == .milliseconds(750))
        #expect(policy.backoff(attempt: 0, random: 1) == .milliseconds(1250))
    }
}

@Suite struct InboxTests {
    @Test func drainsInOrderAndWakes() {
        let inbox = Inbox<Int>()
        inbox.push(1)
        inbox.push(contentsOf: [2, 3])
        let r = Poller.wait([(inbox.wakeup.readFD, true, false)], timeoutMilliseconds: 0)
        #expect(r[0].readable)
        #expect(Array(inbox.drain()) == [1, 2, 3])
        #expect(inbox.isEmpty)
    }
}

import Testing

@testable import ConveyorAMQP

/// Ack merging, without a server: which frames go out for a given order of settlements.
@Suite("Ack merging")
struct SettleTrackerTests {
    private func flush(_ tracker: inout SettleTracker) -> [SettleFrame] {
        var frames: [SettleFrame] = []
        tracker.flush { frames.append($0) }
        return frames
    }

    private func tracker(delivered count: UInt64, from first: UInt64 = 1) -> SettleTracker {
        var tracker = SettleTracker()
        for tag in first..<(first + count) { do { let r = tracker.delivered(tag: tag); #expect(r) } }
        return tracker
    }

    @Test func inOrderAcksBecomeOneMultipleAck() {
        var t = tracker(delivered: 100)
        for tag in UInt64(1)...100 { do { let r = t.settle(tag: tag, kind: .ack); #expect(r) } }
        #expect(flush(&t) == [.ack(tag: 100, multiple: true)])
        #expect(t.isEmpty)
    }

    @Test func singleAckIsNotMultiple() {
        var t = tracker(delivered: 3)
        do { let r = t.settle(tag: 1, kind: .ack); #expect(r) }
        #expect(flush(&t) == [.ack(tag: 1, multiple: false)])
        #expect(!t.isEmpty)
    }

    @Test func outOfOrderAcksBehindAnOutstandingTagGoAlone() {
        var t = tracker(delivered: 5)
        do { let r = t.settle(tag: 3, kind: .ack); #expect(r) }
        do { let r = t.settle(tag: 5, kind: .ack); #expect(r) }
        #expect(flush(&t) == [.ack(tag: 3, multiple: false), .ack(tag: 5, multiple: false)])
        // Tags 1 and 2 settle later: the prefix 1...3 is settled, 3 was already sent, 4 is outstanding.
        do { let r = t.settle(tag: 2, kind: .ack); #expect(r) }
        do { let r = t.settle(tag: 1, kind: .ack); #expect(r) }
        #expect(flush(&t) == [.ack(tag: 2, multiple: true)])
        do { let r = t.settle(tag: 4, kind: .ack); #expect(r) }
        // 4 and the already-sent 5: one multiple ack up to 4 (5 was acked alone before).
        #expect(flush(&t) == [.ack(tag: 4, multiple: false)])
        #expect(t.isEmpty)
    }

    @Test func nacksSplitTheRun() {
        var t = tracker(delivered: 6)
        do { let r = t.settle(tag: 1, kind: .ack); #expect(r) }
        do { let r = t.settle(tag: 2, kind: .ack); #expect(r) }
        do { let r = t.settle(tag: 3, kind: .nackRequeue); #expect(r) }
        do { let r = t.settle(tag: 4, kind: .ack); #expect(r) }
        do { let r = t.settle(tag: 5, kind: .rejectDrop); #expect(r) }
        do { let r = t.settle(tag: 6, kind: .ack); #expect(r) }
        #expect(
            flush(&t) == [
                .ack(tag: 2, multiple: true), .nack(tag: 3, requeue: true), .ack(tag: 4, multiple: false),
                .reject(tag: 5, requeue: false), .ack(tag: 6, multiple: false),
            ])
        #expect(t.isEmpty)
    }

    @Test func doubleAndUnknownSettlementsAreRefused() {
        var t = tracker(delivered: 2)
        do { let r = t.settle(tag: 1, kind: .ack); #expect(r) }
        do { let r = t.settle(tag: 1, kind: .ack); #expect(!r) }
        do { let r = t.settle(tag: 9, kind: .ack); #expect(!r) }
        #expect(flush(&t) == [.ack(tag: 1, multiple: false)])
        do { let r = t.settle(tag: 1, kind: .nackRequeue); #expect(!r) }
        #expect(!t.hasPending)
    }

    @Test func tagsContinueAfterAResubscribeOnTheSameChannel() {
        var t = tracker(delivered: 2)
        do { let r = t.settle(tag: 1, kind: .ack); #expect(r) }
        do { let r = t.settle(tag: 2, kind: .ack); #expect(r) }
        _ = flush(&t)
        do { let r = t.delivered(tag: 3); #expect(r) }
        do { let r = t.delivered(tag: 3); #expect(!r) }
        do { let r = t.settle(tag: 3, kind: .ack); #expect(r) }
        #expect(flush(&t) == [.ack(tag: 3, multiple: false)])
    }

    @Test func resetForgetsAnOldIncarnation() {
        var t = tracker(delivered: 4)
        do { let r = t.settle(tag: 4, kind: .ack); #expect(r) }
        t.reset()
        #expect(t.isEmpty)
        #expect(!t.hasPending)
        do { let r = t.settle(tag: 1, kind: .ack); #expect(!r) }
        do { let r = t.delivered(tag: 1); #expect(r) }
    }
}

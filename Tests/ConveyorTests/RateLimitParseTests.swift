import Testing

@testable import Conveyor

@Suite("Rate limits: the limit string and GCRA")
struct RateLimitParseTests {
    @Test(
        "count/unit strings parse to their emission interval",
        arguments: [
            ("100/s", 100, RateLimit.Period.second, 10.0), ("10/m", 10, .minute, 6_000.0),
            ("1000/h", 1000, .hour, 3_600.0), ("1/s", 1, .second, 1_000.0), ("1000000/s", 1_000_000, .second, 0.001),
            ("3/s", 3, .second, 1_000.0 / 3),
        ])
    func parses(text: String, count: Int, period: RateLimit.Period, interval: Double) throws {
        let limit = try RateLimit(text)
        #expect(limit.count == count)
        #expect(limit.period == period)
        #expect(abs(limit.emissionIntervalMs - interval) < 1e-9)
        #expect(limit.toleranceMs == 0)
        #expect(limit.description == text)
    }

    @Test(
        "anything else is rejected with a reason",
        arguments: [
            "", "100", "100/", "/s", "0/s", "-1/s", "+1/s", "1.5/s", " 10/s", "10/s ", "10 /s", "10/ s", "10/x",
            "10/sec", "10/S", "10/s/s", "ten/s", "99999999999/s", "1000001/s", "10/d",
        ])
    func rejects(text: String) {
        #expect {
            try RateLimit(text)
        } throws: { error in
            guard case .invalid(let quoted, let reason)? = error as? RateLimitError else { return false }
            return quoted == text && !reason.isEmpty
                && "\(error)".hasPrefix("invalid rate limit \"\(text)\": ")
        }
    }

    @Test("a burst below 1 is rejected; a burst widens the tolerance")
    func burst() throws {
        #expect(throws: RateLimitError.self) { try RateLimit("5/s", burst: 0) }
        let limit = try RateLimit("5/s", burst: 3)
        #expect(limit.toleranceMs == 400)
    }

    @Test("GCRA with burst 1 spaces runs one interval apart and gives each its own slot")
    func gcraEven() {
        var tat: Double? = nil
        var runs: [Double] = []
        for _ in 0..<5 {
            let (runAt, newTAT) = GCRA.schedule(tat: tat, now: 1_000, interval: 50, tolerance: 0)
            runs.append(runAt)
            tat = newTAT
        }
        #expect(runs == [1_000, 1_050, 1_100, 1_150, 1_200])
        // After an idle spell the first run is at once again.
        let later = GCRA.schedule(tat: tat, now: 5_000, interval: 50, tolerance: 0)
        #expect(later.runAt == 5_000)
        #expect(later.newTAT == 5_050)
    }

    @Test("GCRA with a burst lets that many run at once, then spaces the rest")
    func gcraBurst() {
        var tat: Double? = nil
        var runs: [Double] = []
        for _ in 0..<5 {
            let (runAt, newTAT) = GCRA.schedule(tat: tat, now: 0, interval: 100, tolerance: 200)
            runs.append(runAt)
            tat = newTAT
        }
        #expect(runs == [0, 0, 0, 100, 200])
    }
}

/// A fleet-wide rate: at most ``count`` runs per ``period``, written like Celery's `rate_limit` (`"100/s"`,
/// `"10/m"`, `"1000/h"`).
///
/// Enforced with GCRA (the generic cell rate algorithm): runs are spaced ``emissionIntervalMs`` apart on average,
/// and up to ``burst`` may run back to back after an idle spell. One Redis key per task name (or per task name and
/// key) holds the theoretical arrival time; see docs/PROTOCOL.md, "Limits".
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// Runs allowed per ``period``; at least 1.
    public let count: Int
    /// The period the count is per.
    public let period: Period
    /// How many runs may start back to back after an idle spell (GCRA's tolerance is `burst - 1` intervals); at
    /// least 1, which spaces every run evenly.
    public let burst: Int

    /// The unit of a rate.
    public enum Period: String, Sendable, Hashable, CaseIterable {
        case second = "s"
        case minute = "m"
        case hour = "h"

        /// The period's length in milliseconds.
        public var milliseconds: Double {
            switch self {
            case .second: 1_000
            case .minute: 60_000
            case .hour: 3_600_000
            }
        }
    }

    /// `count` runs per `period`, up to `burst` back to back.
    ///
    /// - Throws: ``RateLimitError/invalid(_:reason:)`` when `count` or `burst` is below 1.
    public init(count: Int, per period: Period, burst: Int = 1) throws(RateLimitError) {
        guard count >= 1, count <= 1_000_000 else {
            throw .invalid("\(count)/\(period.rawValue)", reason: "the count must be from 1 to 1000000")
        }
        guard burst >= 1 else { throw .invalid("\(count)/\(period.rawValue)", reason: "the burst must be at least 1") }
        self.count = count
        self.period = period
        self.burst = burst
    }

    /// Parses `"<count>/<unit>"`: a positive decimal count, `/`, and `s`, `m` or `h`. Nothing else is accepted (no
    /// spaces, signs, fractions or other units), so a typo fails at startup instead of silently limiting nothing.
    ///
    /// - Throws: ``RateLimitError/invalid(_:reason:)`` saying what is wrong with `text`.
    public init(_ text: String, burst: Int = 1) throws(RateLimitError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw .invalid(text, reason: "expected <count>/<unit> with unit s, m or h, e.g. \"100/s\"")
        }
        let digits = parts[0]
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .invalid(text, reason: "the count must be a whole number of 1 or more, e.g. \"100/s\"")
        }
        // Times are kept to a thousandth of a millisecond (Redis stores them as text with three decimals).
        guard digits.count <= 7, let count = Int(digits), count <= 1_000_000 else {
            throw .invalid(text, reason: "the count is too large (at most 1000000)")
        }
        guard let period = Period(rawValue: String(parts[1])) else {
            throw .invalid(text, reason: "the unit must be s, m or h (per second, minute, hour)")
        }
        try self.init(count: count, per: period, burst: burst)
    }

    /// The mean spacing of runs: the period divided by the count, in milliseconds (fractional).
    public var emissionIntervalMs: Double { period.milliseconds / Double(count) }

    /// GCRA's tolerance: how far ahead of now the theoretical arrival time may be while a run is still allowed.
    public var toleranceMs: Double { emissionIntervalMs * Double(burst - 1) }

    /// `"100/s"`: the text ``init(_:burst:)`` parses.
    public var description: String { "\(count)/\(period.rawValue)" }
}

/// A rate limit string that does not parse.
public enum RateLimitError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalid(String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let text, let reason): "invalid rate limit \"\(text)\": \(reason)"
        }
    }
}

/// The GCRA decision the claim script makes, in Swift: the same arithmetic, for unit tests and documentation.
///
/// Conveyor uses GCRA as a scheduler rather than a gate: every admitted run gets a time slot. A run whose slot is
/// now runs; one whose slot is later is parked in the delay set until then, and its slot is kept for it, so it
/// is counted once however often its message comes back.
public enum GCRA {
    /// The decision for one run at `now` given the stored theoretical arrival time `tat` (`nil`: none stored, the
    /// limit was idle).
    ///
    /// - Returns: `runAt`, when the run may start (`<= now`: at once), and `newTAT`, what to store.
    public static func schedule(
        tat: Double?, now: Double, interval: Double, tolerance: Double
    ) -> (runAt: Double, newTAT: Double) {
        let start = max(tat ?? now, now)
        // Times are whole milliseconds: a slot within the current one counts as now.
        let runAt = start - tolerance
        return (runAt: runAt >= now + 1 ? runAt.rounded(.up) : now, newTAT: start + interval)
    }
}

extension Duration {
    /// The longest duration ``clampedSeconds(_:)`` gives: 100 years, far past any timeout or limit that means
    /// something, and far below what integer milliseconds hold.
    public static let clampedSecondsLimit: Double = 100 * 365 * 86_400

    /// `seconds` as a duration, clamped to 0 (also for NaN) through ``clampedSecondsLimit``.
    ///
    /// For numbers that come from a message, a request or a command line: converting `1e300` seconds to integer
    /// milliseconds directly would trap and take the process down with it.
    public static func clampedSeconds(_ seconds: Double) -> Duration {
        guard seconds > 0 else { return .zero }
        return .milliseconds(Int64(min(seconds, clampedSecondsLimit) * 1000))
    }
}

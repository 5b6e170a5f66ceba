/// A running task's progress: a fraction of the work done, optionally as `current` of `total`, and a message.
public struct TaskProgress: Sendable, Hashable {
    /// 0...1 (clamped).
    public var fraction: Double
    public var message: String?
    public var current: Double?
    public var total: Double?

    /// `fraction` of the work done (clamped to 0...1; NaN counts as 0).
    public init(fraction: Double, message: String? = nil) {
        self.fraction = Self.clamp(fraction)
        self.message = message
    }

    /// `current` of `total` done; a `total` of 0 counts as no progress yet.
    public init(current: Double, total: Double, message: String? = nil) {
        self.fraction = total > 0 ? Self.clamp(current / total) : 0
        self.current = current
        self.total = total
        self.message = message
    }

    private static func clamp(_ value: Double) -> Double {
        value.isFinite ? min(max(value, 0), 1) : 0
    }
}

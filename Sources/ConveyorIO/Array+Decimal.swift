extension [UInt8] {
    /// Appends `value` in decimal, most significant digit first, without building a `String`.
    ///
    /// Both wire encoders use it on their hot paths: RESP lengths and arguments, and the result JSON Conveyor writes.
    @inlinable
    public mutating func appendDecimal<T: BinaryInteger>(_ value: T) {
        if value >= 0, value < 10 {
            // Most lengths in a command are one digit.
            append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = UInt64(truncatingIfNeeded: value.magnitude)
        var divisor: UInt64 = 1
        while divisor <= magnitude / 10 { divisor &*= 10 }
        repeat {
            append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        } while divisor > 0
    }
}

import Foundation

/// Millisecond Unix timestamps, the unit of every time Conveyor keeps in Redis.
public enum MillisecondClock {
    /// Now, from this machine's clock, in milliseconds since 1970.
    public static func now() -> Int64 {
        milliseconds(Date())
    }

    /// `date` in milliseconds since 1970 (rounded down), saturating at the ends of `Int64`: a date from a message
    /// (an `eta` or `expires` thousands of millennia away) must not trap the conversion.
    public static func milliseconds(_ date: Date) -> Int64 {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        if milliseconds.isNaN { return 0 }
        if milliseconds >= Double(Int64.max) { return .max }
        if milliseconds <= Double(Int64.min) { return .min }
        return Int64(milliseconds)
    }

    /// The date of a millisecond timestamp.
    public static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// Appends `milliseconds` as Python's `datetime.isoformat()` writes a UTC time with microseconds
    /// (`2026-01-02T03:04:05.123000+00:00`), the same text as ``CeleryDate/format(_:)`` but without `Calendar`:
    /// it is written for every finished task.
    static func appendISO(_ milliseconds: Int64, to bytes: inout [UInt8]) {
        let (seconds, millis) = milliseconds.quotientAndRemainderFloored(dividingBy: 1000)
        let (days, secondOfDay) = seconds.quotientAndRemainderFloored(dividingBy: 86_400)
        let (year, month, day) = civil(fromDays: days)
        bytes.appendPadded(year, width: 4)
        bytes.append(UInt8(ascii: "-"))
        bytes.appendPadded(month, width: 2)
        bytes.append(UInt8(ascii: "-"))
        bytes.appendPadded(day, width: 2)
        bytes.append(UInt8(ascii: "T"))
        bytes.appendPadded(secondOfDay / 3600, width: 2)
        bytes.append(UInt8(ascii: ":"))
        bytes.appendPadded(secondOfDay / 60 % 60, width: 2)
        bytes.append(UInt8(ascii: ":"))
        bytes.appendPadded(secondOfDay % 60, width: 2)
        bytes.append(UInt8(ascii: "."))
        bytes.appendPadded(millis * 1000, width: 6)
        bytes.append(contentsOf: "+00:00".utf8)
    }

    /// Python's isoformat text of a millisecond timestamp.
    static func iso(_ milliseconds: Int64) -> String {
        var bytes: [UInt8] = []
        appendISO(milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day count since 1970-01-01.
    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}

extension Int64 {
    /// Division rounding toward negative infinity, so times before 1970 still split into a valid second and day.
    fileprivate func quotientAndRemainderFloored(dividingBy divisor: Int64) -> (Int64, Int64) {
        var (quotient, remainder) = quotientAndRemainder(dividingBy: divisor)
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }
}

import Foundation

/// A cron expression: when a periodic task fires.
///
/// Five fields, `minute hour day-of-month month day-of-week`, or six with a leading `second` field. Each field is
/// `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from `a` to the field's end), or a comma-separated
/// list of those. Months and weekdays may be named (`jan`…`dec`, `sun`…`sat`, any case); weekday `7` is Sunday like
/// `0`. As in Vixie cron, when both day-of-month and day-of-week are restricted (neither starts with `*`), a day
/// matching either fires. The macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and
/// `@hourly` stand for their usual expressions.
///
/// Times are evaluated in ``timeZone`` (UTC unless given). In a zone with daylight saving time, a local time that
/// does not exist is skipped and one that occurs twice fires at its first occurrence.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The allowed values of each field, sorted.
    public let seconds: [Int]
    public let minutes: [Int]
    public let hours: [Int]
    public let daysOfMonth: [Int]
    public let months: [Int]
    /// 0 (Sunday) to 6.
    public let daysOfWeek: [Int]
    /// Whether day-of-month and day-of-week were both restricted (a day matching either fires).
    let eitherDay: Bool
    let domRestricted: Bool
    let dowRestricted: Bool
    public let timeZone: TimeZone
    /// The expression as written.
    public let expression: String

    public var description: String { expression }

    /// Parses `expression`.
    ///
    /// - Throws: ``PeriodicScheduleError/invalidCron(_:reason:)`` naming the field at fault.
    public init(_ expression: String, timeZone: TimeZone = .gmt) throws {
        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        let expanded: String
        switch trimmed.lowercased() {
        case "@yearly", "@annually": expanded = "0 0 1 1 *"
        case "@monthly": expanded = "0 0 1 * *"
        case "@weekly": expanded = "0 0 * * 0"
        case "@daily", "@midnight": expanded = "0 0 * * *"
        case "@hourly": expanded = "0 * * * *"
        default: expanded = trimmed
        }
        var fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw PeriodicScheduleError.invalidCron(
                expression, reason: "expected 5 fields (minute hour day month weekday) or 6 (with seconds first)")
        }
        if fields.count == 5 { fields.insert("0", at: 0) }
        func field(_ index: Int, _ name: String, _ range: ClosedRange<Int>, names: [String] = []) throws -> [Int] {
            do {
                return try Self.parseField(fields[index], range: range, names: names)
            } catch let reason as FieldError {
                throw PeriodicScheduleError.invalidCron(
                    expression, reason: "\(name) field '\(fields[index])': \(reason.text)")
            }
        }
        seconds = try field(0, "second", 0...59)
        minutes = try field(1, "minute", 0...59)
        hours = try field(2, "hour", 0...23)
        daysOfMonth = try field(3, "day-of-month", 1...31)
        months = try field(4, "month", 1...12, names: Self.monthNames)
        daysOfWeek = Array(Set(try field(5, "day-of-week", 0...7, names: Self.dayNames).map { $0 % 7 })).sorted()
        domRestricted = !fields[3].hasPrefix("*")
        dowRestricted = !fields[5].hasPrefix("*")
        eitherDay = domRestricted && dowRestricted
        self.timeZone = timeZone
        self.expression = trimmed
        if next(after: Date(timeIntervalSince1970: 0)) == nil {
            throw PeriodicScheduleError.invalidCron(expression, reason: "it never fires")
        }
    }

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    struct FieldError: Error {
        var text: String
    }

    static func parseField(_ text: String, range: ClosedRange<Int>, names: [String]) throws -> [Int] {
        var values = Set<Int>()
        func value(_ token: Substring) throws -> Int {
            if let number = Int(token) {
                guard range.contains(number) else {
                    throw FieldError(text: "\(number) is outside \(range.lowerBound)-\(range.upperBound)")
                }
                return number
            }
            if let index = names.firstIndex(of: token.lowercased()) {
                // Months are named from 1, weekdays from 0.
                return index + (range.lowerBound == 1 ? 1 : 0)
            }
            throw FieldError(text: "'\(token)' is not a number\(names.isEmpty ? "" : " or a name")")
        }
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw FieldError(text: "an empty list element") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw FieldError(text: "more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else {
                    throw FieldError(text: "the step '\(pieces[1])' is not a positive number")
                }
                step = parsed
            }
            let base = pieces[0]
            var low: Int
            var high: Int
            if base == "*" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash])
                high = try value(base[base.index(after: dash)...])
                guard low <= high else { throw FieldError(text: "the range \(low)-\(high) is backwards") }
            } else {
                low = try value(base)
                // `a/n` runs from a to the field's end.
                high = pieces.count == 2 ? range.upperBound : low
            }
            for number in stride(from: low, through: high, by: step) { values.insert(number) }
        }
        return values.sorted()
    }

    /// Whether the day `year-month-day` (weekday `weekday`, 0 = Sunday) may fire.
    func dayMatches(day: Int, weekday: Int) -> Bool {
        let dom = daysOfMonth.contains(day)
        let dow = daysOfWeek.contains(weekday)
        if eitherDay { return dom || dow }
        return dom && dow
    }

    /// The first time strictly after `date` that matches, or `nil` if none within about eight years (an
    /// expression such as `0 0 30 2 *` never matches).
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // Whole seconds: the next candidate is the second after `date`'s.
        let start = Date(timeIntervalSince1970: (date.timeIntervalSince1970 + 1).rounded(.down))
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: start)
        guard var year = parts.year, var month = parts.month, var day = parts.day, var hour = parts.hour,
            var minute = parts.minute, var second = parts.second
        else { return nil }
        let lastYear = year + 8
        while year <= lastYear {
            // Carry overflowing fields upwards.
            if second > 59 { (second, minute) = (0, minute + 1) }
            if minute > 59 { (minute, hour) = (0, hour + 1) }
            if hour > 23 { (hour, day) = (0, day + 1) }
            if day > Self.daysIn(year: year, month: month) { (day, month) = (1, month + 1) }
            if month > 12 { (month, year) = (1, year + 1) }
            guard let nextMonth = months.first(where: { $0 >= month }) else {
                (year, month, day, hour, minute, second) = (year + 1, 1, 1, 0, 0, 0)
                continue
            }
            if nextMonth != month {
                (month, day, hour, minute, second) = (nextMonth, 1, 0, 0, 0)
                continue
            }
            let weekday = Self.weekday(year: year, month: month, day: day)
            if !dayMatches(day: day, weekday: weekday) {
                (day, hour, minute, second) = (day + 1, 0, 0, 0)
                continue
            }
            guard let nextHour = hours.first(where: { $0 >= hour }) else {
                (day, hour, minute, second) = (day + 1, 0, 0, 0)
                continue
            }
            if nextHour != hour {
                (hour, minute, second) = (nextHour, 0, 0)
                continue
            }
            guard let nextMinute = minutes.first(where: { $0 >= minute }) else {
                (hour, minute, second) = (hour + 1, 0, 0)
                continue
            }
            if nextMinute != minute {
                (minute, second) = (nextMinute, 0)
                continue
            }
            guard let nextSecond = seconds.first(where: { $0 >= second }) else {
                (minute, second) = (minute + 1, 0)
                continue
            }
            second = nextSecond
            let components = DateComponents(
                timeZone: timeZone, year: year, month: month, day: day, hour: hour, minute: minute, second: second)
            // A local time that does not exist (daylight saving) resolves elsewhere; one not after `date` (the
            // repeated hour) is skipped.
            if let candidate = calendar.date(from: components), candidate > date {
                let check = calendar.dateComponents([.hour, .minute], from: candidate)
                if check.hour == hour && check.minute == minute { return candidate }
            }
            second += 1
        }
        return nil
    }

    static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// 0 = Sunday (Sakamoto's method).
    static func weekday(year: Int, month: Int, day: Int) -> Int {
        let offsets = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4]
        let y = month < 3 ? year - 1 : year
        return (y + y / 4 - y / 100 + y / 400 + offsets[month - 1] + day) % 7
    }
}

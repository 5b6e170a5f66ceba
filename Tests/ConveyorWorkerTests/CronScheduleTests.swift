import Conveyor
import Foundation
import Testing

@testable import ConveyorWorker

/// The cron parser, the next-fire computation and the periodic task descriptions: pure logic, no servers.
@Suite("Periodic: cron expressions and schedules")
struct CronScheduleTests {
    static let utc = TimeZone.gmt

    /// `YYYY-MM-DD HH:MM:SS` in UTC.
    static func date(_ text: String) throws -> Date {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = utc
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return try #require(formatter.date(from: text), "bad test date \(text)")
    }

    static func text(_ date: Date?, zone: TimeZone = utc) -> String {
        guard let date else { return "nil" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }

    /// The next `count` fire times after `start`.
    static func fires(
        _ expression: String, after start: String, count: Int = 1, zone: TimeZone = utc
    ) throws
        -> [String]
    {
        let cron = try CronSchedule(expression, timeZone: zone)
        var times: [String] = []
        var current = try date(start)
        for _ in 0..<count {
            guard let next = cron.next(after: current) else {
                times.append("nil")
                break
            }
            times.append(text(next, zone: zone))
            current = next
        }
        return times
    }

    @Test(
        "next fire times of typical expressions",
        arguments: [
            ("* * * * *", "2026-03-10 12:34:56", ["2026-03-10 12:35:00", "2026-03-10 12:36:00"]),
            ("*/15 * * * *", "2026-03-10 12:34:56", ["2026-03-10 12:45:00", "2026-03-10 13:00:00"]),
            ("0 3 * * *", "2026-03-10 03:00:00", ["2026-03-11 03:00:00", "2026-03-12 03:00:00"]),
            ("30 9 * * mon-fri", "2026-03-13 10:00:00", ["2026-03-16 09:30:00", "2026-03-17 09:30:00"]),
            ("0 0 1 jan,jul *", "2026-03-10 00:00:00", ["2026-07-01 00:00:00", "2027-01-01 00:00:00"]),
            ("0 12 29 2 *", "2026-03-10 00:00:00", ["2028-02-29 12:00:00", "2032-02-29 12:00:00"]),
            ("5-10/5 8-9 * * *", "2026-03-10 08:07:00", ["2026-03-10 08:10:00", "2026-03-10 09:05:00"]),
            ("0 0 * * 7", "2026-03-10 00:00:00", ["2026-03-15 00:00:00", "2026-03-22 00:00:00"]),
            // Day-of-month OR day-of-week when both are restricted (Vixie cron): the 13th, and every Friday.
            (
                "0 0 13 * fri", "2026-03-01 00:00:00",
                ["2026-03-06 00:00:00", "2026-03-13 00:00:00", "2026-03-20 00:00:00"]
            ),
            ("0 0 31 * *", "2026-01-31 00:00:00", ["2026-03-31 00:00:00", "2026-05-31 00:00:00"]),
            ("*/20 * * * * *", "2026-03-10 12:34:56", ["2026-03-10 12:35:00", "2026-03-10 12:35:20"]),
            ("@hourly", "2026-12-31 23:59:59", ["2027-01-01 00:00:00", "2027-01-01 01:00:00"]),
            ("@weekly", "2026-03-10 00:00:00", ["2026-03-15 00:00:00"]),
            (
                "15/20 * * * *", "2026-03-10 12:00:00",
                ["2026-03-10 12:15:00", "2026-03-10 12:35:00", "2026-03-10 12:55:00"]
            ),
        ] as [(String, String, [String])])
    func nextFires(expression: String, start: String, expected: [String]) throws {
        #expect(try Self.fires(expression, after: start, count: expected.count) == expected)
    }

    @Test("a fire time is strictly after the given time, even inside the matching second")
    func strictlyAfter() throws {
        let cron = try CronSchedule("* * * * * *")
        let start = try Self.date("2026-03-10 12:00:00").addingTimeInterval(0.5)
        #expect(Self.text(cron.next(after: start)) == "2026-03-10 12:00:01")
        #expect(Self.text(cron.next(after: try Self.date("2026-03-10 12:00:00"))) == "2026-03-10 12:00:01")
    }

    @Test("daylight saving: a skipped local time does not fire, a repeated one fires once")
    func daylightSaving() throws {
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        // 2026-03-29 02:30 does not exist in Berlin (clocks go 02:00 → 03:00).
        #expect(
            try Self.fires("30 2 * * *", after: "2026-03-28 12:00:00", count: 2, zone: berlin) == [
                "2026-03-30 02:30:00", "2026-03-31 02:30:00",
            ])
        // 2026-10-25 02:30 happens twice; it fires once.
        #expect(
            try Self.fires("30 2 * * *", after: "2026-10-24 12:00:00", count: 2, zone: berlin) == [
                "2026-10-25 02:30:00", "2026-10-26 02:30:00",
            ])
    }

    @Test(
        "invalid expressions are refused with the field at fault",
        arguments: [
            ("* * * *", "expected 5 fields"), ("60 * * * *", "minute field"), ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field"), ("* * * 13 *", "month field"), ("* * * * 8", "day-of-week field"),
            ("*/0 * * * *", "step"), ("5-1 * * * *", "backwards"), ("* * * foo *", "not a number"),
            ("0 0 30 2 *", "never fires"), ("1,,2 * * * *", "empty"),
        ])
    func invalid(expression: String, fragment: String) {
        do {
            _ = try CronSchedule(expression)
            Issue.record("'\(expression)' was accepted")
        } catch {
            #expect("\(error)".contains(fragment), "\(error)")
        }
    }

    @Test("intervals tick on multiples since the epoch; every and @every parse")
    func intervals() throws {
        let schedule = try PeriodicSchedule.parse("@every 1s")
        #expect(schedule == .every(.seconds(1)))
        #expect(schedule.nextTick(afterMs: 1_000) == 2_000)
        #expect(schedule.nextTick(afterMs: 1_999) == 2_000)
        #expect(try PeriodicSchedule.parse("every 1m30s") == .every(.seconds(90)))
        #expect(try PeriodicSchedule.parseInterval("250ms") == .milliseconds(250))
        #expect(try PeriodicSchedule.parseInterval("1.5s") == .milliseconds(1500))
        #expect(throws: PeriodicScheduleError.self) { try PeriodicSchedule.parseInterval("5ms") }
        #expect(throws: PeriodicScheduleError.self) { try PeriodicSchedule.parseInterval("1 fortnight") }
        let fiveMinutes = PeriodicSchedule.every(.seconds(300))
        #expect(fiveMinutes.nextTick(afterMs: 1_000) == 300_000)
        #expect(fiveMinutes.description == "every 300s")
        let cron = try PeriodicSchedule.parse("0 * * * *")
        #expect(cron.nextTick(afterMs: 0) == 3_600_000)
        #expect(cron.description == "0 * * * *")
    }

    @Test("the command line's periodic descriptions parse, keeping commas inside cron lists and JSON")
    func specs() throws {
        let simple = try PeriodicTask(spec: "name=examples.noop,every=1s")
        #expect(simple.name == "examples.noop" && simple.task == "examples.noop")
        #expect(simple.schedule == .every(.seconds(1)) && !simple.catchUp)

        let full = try PeriodicTask(
            spec:
                #"name=rec,task=examples.record,cron=0,30 9-17 * * mon-fri,kwargs={"key":"k","token":"a,b"},queue=q,catchup=true,grace=10s"#
        )
        #expect(full.task == "examples.record")
        #expect(full.schedule.description == "0,30 9-17 * * mon-fri")
        #expect(full.kwargs == ["key": "k", "token": "a,b"])
        #expect(full.options.queue == "q" && full.catchUp && full.misfireGrace == .seconds(10))

        for bad in [
            "every=1s", "name=x", "name=x,every=1s,cron=* * * * *", "name=x,every=soon", "name=x,every=1s,colour=red",
            "name=x,every=1s,kwargs=[1]",
        ] {
            #expect(throws: PeriodicScheduleError.self, "\(bad)") { try PeriodicTask(spec: bad) }
        }
    }

    @Test("tick ids are deterministic per schedule, tick and prefix, and shaped like UUIDs")
    func tickIDs() throws {
        let task = PeriodicTask(name: "tick", task: "examples.noop", schedule: .every(.seconds(1)))
        let id = task.taskID(tickMs: 1_000, prefix: "p:")
        #expect(id == task.taskID(tickMs: 1_000, prefix: "p:"))
        #expect(id != task.taskID(tickMs: 2_000, prefix: "p:"))
        #expect(id != task.taskID(tickMs: 1_000, prefix: "q:"))
        #expect(UUID(uuidString: id) != nil && id == id.lowercased())
        #expect(Array(id)[14] == "8")
        #expect(TaskID.derived(from: "") == "cbf29ce4-8422-8325-8422-2325cbf29ce4")
    }
}

import ConveyorExamples
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The examples worker with `--metrics-port`: its swift-metrics, scraped the way Prometheus does. A separate
/// process, since swift-metrics takes one backend per process and the test process has its own.
@Suite("Worker: Prometheus endpoint")
struct WorkerPrometheusTests {
    @Test("GET /metrics shows the worker's counters per task, in Prometheus's text format; SIGTERM closes it")
    func scrapesTaskCounters() async throws {
        try await WorkerFixture.with("prometheus") { f in
            let worker = try ExamplesWorkerProcess.start(
                f, concurrency: 2, logLevel: "notice", extra: ["--metrics-port", "0"])
            defer {
                worker.signal(SIGKILL)
                worker.removeOutput()
            }
            // The endpoint logs its address once it listens (port 0: the system chose it).
            let url = try await eventuallyValue("the metrics endpoint's address", timeout: .seconds(60)) {
                Self.endpoint(in: worker.output)
            }

            let sum = try await f.client.submit(Examples.Add.self, .init(a: 2, b: 3), options: .init(queue: f.queue))
            #expect(try await sum.get(timeout: .seconds(60)) == 5)
            let failing = try await f.client.submit(
                Examples.Fail.self, .init(message: "scraped"), options: .init(queue: f.queue))
            await #expect(throws: TaskError.self) { try await failing.get(timeout: .seconds(60)) }

            let (body, contentType) = try await eventuallyValue("both outcomes counted", timeout: .seconds(15)) {
                let (body, contentType) = try await Self.get(url)
                let counted =
                    Self.value(of: #"conveyor_tasks_succeeded_total{task="examples.add"}"#, in: body) == 1
                    && Self.value(of: #"conveyor_tasks_failed_total{task="examples.fail",reason="error"}"#, in: body)
                        == 1
                return counted ? (body, contentType) : nil
            }
            #expect(contentType.hasPrefix("text/plain; version=0.0.4"), "\(contentType)")
            #expect(body.contains("# TYPE conveyor_tasks_succeeded_total counter"), "\(body)")
            #expect(
                Self.value(of: #"conveyor_tasks_received_total{queue="\#(f.queue)"}"#, in: body) == 2, "\(body)")
            #expect(Self.value(of: #"conveyor_tasks_started_total{task="examples.add"}"#, in: body) == 1, "\(body)")
            // The run-time timer is a histogram: one run of examples.add observed.
            #expect(
                Self.value(of: #"conveyor_task_run_seconds_count{task="examples.add"}"#, in: body) == 1, "\(body)")

            // A graceful shutdown stops the endpoint with the worker.
            worker.signal(SIGTERM)
            #expect(await worker.exitStatus() == 0, "\(worker.output)")
            await #expect(throws: (any Error).self) { _ = try await Self.get(url) }
        }
    }

    /// The URL in the endpoint's "metrics endpoint listening" log line.
    static func endpoint(in log: String) -> URL? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("metrics endpoint listening") }),
            let start = line.range(of: "http://")
        else { return nil }
        let address = line[start.lowerBound...].prefix { !$0.isWhitespace && $0 != "\"" && $0 != "]" }
        return URL(string: String(address))
    }

    /// The body and content type of a GET.
    static func get(_ url: URL) async throws -> (String, String) {
        var request = URLRequest(url: url)
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == 200)
        return (String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "Content-Type") ?? "")
    }

    /// The value of the sample whose name and labels are `series`, if the exposition has it. Labels are matched as
    /// written, in any order.
    static func value(of series: String, in exposition: String) -> Double? {
        let wanted = Self.parse(series)
        for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            if Self.parse(String(line[..<space])) == wanted { return Double(line[line.index(after: space)...]) }
        }
        return nil
    }

    /// A series as its name and its set of `label="value"` pairs.
    static func parse(_ series: String) -> [String] {
        guard let open = series.firstIndex(of: "{"), series.hasSuffix("}") else { return [series] }
        let labels = series[series.index(after: open)..<series.index(before: series.endIndex)]
        return [String(series[..<open])] + labels.split(separator: ",").map(String.init).sorted()
    }
}

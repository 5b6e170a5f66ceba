import ConveyorAMQP
import Testing

@Suite("AMQP URLs")
struct AMQPURLTests {
    @Test func fullURL() throws {
        let url = try AMQPURL(string: "amqp://alice:s3cret@broker.example:5673/jobs")
        #expect(
            url == AMQPURL(host: "broker.example", port: 5673, user: "alice", password: "s3cret", virtualHost: "jobs"))
    }

    @Test func defaults() throws {
        #expect(try AMQPURL(string: "amqp://rabbit") == AMQPURL(host: "rabbit"))
        #expect(try AMQPURL(string: "amqp://rabbit/") == AMQPURL(host: "rabbit"))
        #expect(try AMQPURL(string: "amqp://") == AMQPURL())
        let url = try AMQPURL(string: "AMQP://bob@rabbit:1234")
        #expect(url.user == "bob")
        #expect(url.password == "guest")
        #expect(url.port == 1234)
        #expect(url.virtualHost == "/")
    }

    @Test func percentDecoding() throws {
        #expect(try AMQPURL(string: "amqp://h/%2F").virtualHost == "/")
        #expect(try AMQPURL(string: "amqp://h/%2Fprod%20eu").virtualHost == "/prod eu")
        let url = try AMQPURL(string: "amqp://us%40er:p%3Ass%2Fw%40rd@h")
        #expect(url.user == "us@er")
        #expect(url.password == "p:ss/w@rd")
        // The last '@' separates user info from host, so an unencoded '@' in the password still parses.
        #expect(try AMQPURL(string: "amqp://u:p@ss@h:5672").password == "p@ss")
    }

    @Test func ipv6Host() throws {
        let url = try AMQPURL(string: "amqp://[::1]:5680/v")
        #expect(url.host == "::1")
        #expect(url.port == 5680)
        #expect(url.description == "amqp://guest:***@[::1]:5680/v")
    }

    @Test(arguments: [
        "localhost:5672",
        "http://localhost:5672/",
        "amqps://localhost/",
        "amqp://localhost:notaport/",
        "amqp://localhost:0/",
        "amqp://localhost:70000/",
        "amqp://localhost:-1/",
        "amqp://localhost/a/b",
        "amqp://localhost/%zz",
        "amqp://localhost/%2",
        "amqp://localhost/?heartbeat=5",
        "amqp://[::1/",
    ])
    func badInput(_ string: String) {
        #expect {
            try AMQPURL(string: string)
        } throws: { error in
            guard case .invalidURL(let reason) = error as? AMQPError else { return false }
            return !reason.isEmpty
        }
    }

    @Test func descriptionRedactsPassword() throws {
        let url = try AMQPURL(string: "amqp://alice:topsecret@h:5999/%2F")
        #expect(!url.description.contains("topsecret"))
        #expect(url.description == "amqp://alice:***@h:5999/")
        #expect(!"\(url)".contains("topsecret"))
        let vhost = try AMQPURL(string: "amqp://alice:topsecret@h/%2Fprod")
        #expect(vhost.description == "amqp://alice:***@h:5672/%2Fprod")
        // A URL that fails to parse does not echo its password either.
        do {
            _ = try AMQPURL(string: "amqp://alice:topsecret@h:bad/")
            Issue.record("expected a parse error")
        } catch {
            #expect(!"\(error)".contains("topsecret"))
        }
    }

    @Test func configurationFromString() throws {
        let configuration = try AMQPConfiguration(url: "amqp://u:p@h:1/v", connectionName: "x")
        #expect(configuration.urls == [AMQPURL(host: "h", port: 1, user: "u", password: "p", virtualHost: "v")])
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "nope") }
    }
}

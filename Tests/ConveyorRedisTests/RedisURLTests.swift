import Testing

@testable import ConveyorRedis

@Suite("Redis URLs")
struct RedisURLTests {
    @Test("host only: default port 6379 and database 0")
    func defaults() throws {
        let url = try RedisURL(string: "redis://cache.internal")
        #expect(url.host == "cache.internal")
        #expect(url.port == 6379)
        #expect(url.database == 0)
        #expect(url.username == nil)
        #expect(url.password == nil)
    }

    @Test("password, port and database")
    func full() throws {
        let url = try RedisURL(string: "redis://:s3cret@10.0.0.5:6380/3")
        #expect(url.host == "10.0.0.5")
        #expect(url.port == 6380)
        #expect(url.database == 3)
        #expect(url.username == nil)
        #expect(url.password == "s3cret")
    }

    @Test("ACL user and percent-decoded password (with ':' '@' '/' in it)")
    func userAndEncodedPassword() throws {
        let url = try RedisURL(string: "REDIS://worker:p%40ss%3Aw%2Frd@localhost:7000/")
        #expect(url.username == "worker")
        #expect(url.password == "p@ss:w/rd")
        #expect(url.host == "localhost")
        #expect(url.port == 7000)
        #expect(url.database == 0)
    }

    @Test("IPv6 host in brackets")
    func ipv6() throws {
        let url = try RedisURL(string: "redis://[::1]:6390/2")
        #expect(url.host == "::1")
        #expect(url.port == 6390)
        #expect(url.database == 2)
        #expect(url.description == "redis://[::1]:6390/2")
    }

    @Test("description hides the password")
    func redaction() throws {
        let url = try RedisURL(string: "redis://admin:hunter2@h:1/4")
        #expect(url.description == "redis://admin:***@h:1/4")
        #expect(!url.description.contains("hunter2"))
        #expect(try RedisURL(string: "redis://:hunter2@h").description == "redis://:***@h:6379/0")
        #expect(try RedisURL(string: "redis://h").description == "redis://h:6379/0")
    }

    @Test(
        "malformed URLs are rejected with the reason",
        arguments: [
            ("http://localhost:6379", "scheme"),
            ("rediss://localhost", "TLS"),
            ("localhost:6379", "expected redis://"),
            ("redis://", "missing host"),
            ("redis://:pw@:6379/0", "missing host"),
            ("redis://localhost:abc", "port"),
            ("redis://localhost:0", "port"),
            ("redis://localhost:70000", "port"),
            ("redis://localhost:+80", "port"),
            ("redis://localhost/x", "database"),
            ("redis://localhost/-1", "database"),
            ("redis://localhost/1/2", "database"),
            ("redis://localhost/0?timeout=1", "query"),
            ("redis://:bad%zz@localhost", "percent"),
            ("redis://[::1:6379", "IPv6"),
        ])
    func malformed(url: String, reason: String) {
        #expect {
            try RedisURL(string: url)
        } throws: { error in
            guard case RedisError.invalidURL(let message) = error else { return false }
            return message.contains(reason)
        }
    }

    @Test("an error message never shows the password of a malformed URL")
    func malformedRedaction() {
        do {
            _ = try RedisURL(string: "redis://user:topsecret@")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("missing host"))
            #expect(!error.description.contains("topsecret"))
        }
    }
}

@Suite("Redis commands")
struct RedisCommandEncodingTests {
    @Test("arguments of different types encode as binary-safe bulk strings")
    func encoding() {
        let command = RedisCommand("SET", "k", [UInt8]([0, 255]), 42, -7, 1.5)
        #expect(command.name == "SET")
        #expect(command.wordCount == 6)
        #expect(command.description == "SET (5 arguments)")
        let expected =
            "*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\u{0}\u{FF}\r\n$2\r\n42\r\n$2\r\n-7\r\n$3\r\n1.5\r\n"
        var bytes = Array(expected.utf8)
        // The \u{FF} above is two UTF-8 bytes; the argument is the single byte 255.
        if let index = bytes.firstIndex(of: 0xC3) { bytes.replaceSubrange(index...index + 1, with: [255]) }
        #expect(command.encoded == bytes)
    }

    @Test("replies convert to typed values")
    func replyAccessors() {
        #expect(RESPValue.bulkString(Array("12".utf8)).int == 12)
        #expect(RESPValue.bulkString(Array("1.5".utf8)).double == 1.5)
        #expect(RESPValue.integer(3).string == "3")
        #expect(RESPValue.null.bytes == nil)
        #expect(RESPValue.null.isNull)
        #expect(RESPValue.array([.integer(1)]).array == [.integer(1)])
        #expect(RESPValue.simpleString("OK").string == "OK")
    }
}

@Suite("Decimal encoding")
struct DecimalEncodingTests {
    @Test("integers encode like String(_:)", arguments: [0, 1, 9, 10, 11, 99, 100, 12345, -1, -10, Int.max, Int.min])
    func decimal(value: Int) {
        var bytes: [UInt8] = []
        bytes.appendDecimal(value)
        #expect(String(decoding: bytes, as: UTF8.self) == String(value))
    }
}

import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@Suite("AMQP tables and properties through the broker")
struct TableRoundTripTests {
    @Test func everyValueTypeAndPropertySurvivesTheBroker() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("roundtrip"))
        var spec = AMQPQueue(TestServers.uniqueName("q-roundtrip"), durable: false)
        spec.maxPriority = 5
        try await connection.declare(spec)

        let headers: AMQPTable = [
            "string": "héllo wörld ✓",
            "empty": "",
            "small": 42,
            "negative": -7,
            "int32max": .int(Int64(Int32.max)),
            "int32min": .int(Int64(Int32.min)),
            "big": .int(Int64(Int32.max) + 1),
            "int64min": .int(Int64.min),
            "true": true,
            "false": false,
            "double": 3.25,
            "bytes": .bytes([0, 1, 2, 255, 0]),
            "timestamp": .timestamp(Date(timeIntervalSince1970: 1_700_000_000)),
            "void": .void,
            "array": [1, "two", true, [3, 4], ["nested": "in array"]],
            "emptyArray": [],
            "table": ["a": 1, "b": ["c": ["d": "deep"]], "list": ["x", "y"]],
            "emptyTable": .table([:]),
        ]
        let properties = AMQPProperties(
            contentType: "application/json", contentEncoding: "utf-8", headers: headers, deliveryMode: .transient,
            priority: 3, correlationId: "corr-1", replyTo: "reply-queue", expiration: "60000", messageId: "msg-1",
            timestamp: Date(timeIntervalSince1970: 1_600_000_000), type: "task", userId: "guest", appId: "tests")
        let body: [UInt8] = Array(0...255) + Array(repeating: 7, count: 300_000)  // more than two frames
        try await connection.publish(AMQPMessage(body: body, properties: properties), routingKey: spec.name)
        try await connection.publish(AMQPMessage(body: []), routingKey: spec.name)

        let consumer = try await connection.consume(queue: spec.name)
        let got = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 2)
        try #require(got.count == 2)
        #expect(got[0].body == body)
        #expect(got[0].properties == properties)
        for (key, value) in headers { #expect(got[0].properties.headers[key] == value, "header \(key)") }
        #expect(got[1].body.isEmpty)
        #expect(got[1].properties == AMQPProperties())
        for delivery in got { delivery.ack() }
        await consumer.cancel()
        try await connection.deleteQueue(spec.name)
        await connection.close()
    }

    @Test func typedQueueArguments() {
        var queue = AMQPQueue("q")
        queue.queueType = .quorum
        queue.deadLetterExchange = "dlx"
        queue.deadLetterRoutingKey = "dead"
        queue.deliveryLimit = 5
        queue.singleActiveConsumer = true
        queue.maxPriority = 9
        queue.maxLength = 100
        queue.overflow = .rejectPublish
        #expect(
            queue.arguments == [
                "x-queue-type": "quorum", "x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dead",
                "x-delivery-limit": 5, "x-single-active-consumer": true, "x-max-priority": 9, "x-max-length": 100,
                "x-overflow": "reject-publish",
            ])
        #expect(queue.queueType == .quorum)
        #expect(queue.deliveryLimit == 5)
        #expect(queue.overflow == .rejectPublish)
        queue.singleActiveConsumer = false
        queue.maxLength = nil
        #expect(queue.arguments["x-single-active-consumer"] == nil)
        #expect(queue.arguments["x-max-length"] == nil)
    }

    @Test func quorumQueueWithDeliveryLimitIsAccepted() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("quorum"))
        var spec = AMQPQueue(TestServers.uniqueName("q-quorum"))
        spec.queueType = .quorum
        spec.deliveryLimit = 3
        spec.singleActiveConsumer = true
        let info = try await connection.declare(spec)
        #expect(info.name == spec.name)
        try await connection.publish(AMQPMessage("q"), routingKey: spec.name)
        let consumer = try await connection.consume(queue: spec.name, prefetch: 2)
        let got = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        #expect(got.map(\.bodyString) == ["q"])
        got.first?.ack()
        try await consumer.setPrefetch(4)
        await consumer.cancel()
        try await connection.deleteQueue(spec.name)
        await connection.close()
    }
}

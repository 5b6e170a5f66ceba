import ConveyorAMQP
import Foundation
import Testing

@testable import Conveyor

@Suite("Task definitions and client configuration")
struct ClientDefinitionTests {
    @Test("positional args map to argumentNames and merge with kwargs")
    func decodesPositionalArgs() throws {
        let envelope = TaskEnvelope(task: Add.name, args: [2], kwargs: ["b": 3])
        #expect(try Add.decodeInput(from: envelope) == Add.Input(a: 2, b: 3))
        #expect(try Add.encodeInput(.init(a: 2, b: 3)) == ["a": 2, "b": 3])
    }

    @Test("a wrong type names the task and the field")
    func wrongTypeNamesField() {
        let envelope = TaskEnvelope(task: Add.name, kwargs: ["a": 1, "b": "three"])
        let error = #expect(throws: TaskInputError.self) { try Add.decodeInput(from: envelope) }
        #expect(error?.task == "examples.add")
        #expect(error?.field == "b")
        #expect(error.map { "\($0)" }?.contains("'b'") == true)
    }

    @Test("missing fields, duplicates and surplus positional args are refused clearly")
    func otherInputErrors() {
        let missing = #expect(throws: TaskInputError.self) {
            try Add.decodeInput(from: TaskEnvelope(task: Add.name, kwargs: ["a": 1]))
        }
        #expect(missing?.field == "b")
        let twice = #expect(throws: TaskInputError.self) {
            try Add.decodeInput(from: TaskEnvelope(task: Add.name, args: [1], kwargs: ["a": 1, "b": 2]))
        }
        #expect(twice?.field == "a")
        let surplus = #expect(throws: TaskInputError.self) {
            try Resize.decodeInput(from: TaskEnvelope(task: Resize.name, args: ["u", 3]))
        }
        #expect(surplus?.task == "images.resize")
    }

    @Test("JSON values round-trip through AMQP header values")
    func jsonAMQPRoundTrip() {
        let headers: [String: JSONValue] = [
            "s": "x", "i": 42, "d": 1.5, "b": true, "n": nil, "a": [1, "two", nil], "o": ["k": ["v": 1]],
        ]
        #expect(AMQPTable(json: headers).jsonFields == headers)
        #expect(JSONValue(amqpValue: .bytes(Array("hi".utf8))) == "hi")
    }

    @Test("configuration from the environment, with defaults")
    func configurationFromEnvironment() {
        let defaults = ConveyorConfiguration.fromEnvironment([:])
        #expect(defaults.brokerURLs == ["amqp://guest:guest@127.0.0.1:5672/"])
        #expect(defaults.redisURL == "redis://127.0.0.1:6379/0")
        #expect(defaults.keyPrefix == "conveyor:")
        let set = ConveyorConfiguration.fromEnvironment([
            "CONVEYOR_BROKER_URL": "amqp://a:b@h1:5672/, amqp://a:b@h2:5672/",
            "CONVEYOR_REDIS_URL": "redis://r:6380/2", "CONVEYOR_PREFIX": "app:",
        ])
        #expect(set.brokerURLs == ["amqp://a:b@h1:5672/", "amqp://a:b@h2:5672/"])
        #expect(set.redisURL == "redis://r:6380/2")
        #expect(set.keyPrefix == "app:")
        #expect(defaults.topology.queueType == .quorum)
        #expect(
            ConveyorConfiguration.fromEnvironment(["CONVEYOR_QUEUE_TYPE": "Classic"]).topology.queueType == .classic)
    }

    @Test("a CONVEYOR_QUEUE_TYPE that is neither quorum nor classic stops the connect, naming the variable")
    func badQueueTypeRefused() async throws {
        let configuration = ConveyorConfiguration.fromEnvironment(["CONVEYOR_QUEUE_TYPE": "fast"])
        let error = await #expect(throws: ConveyorError.self) {
            _ = try await configuration.connectServers(connectionName: "test")
        }
        guard case .invalidConfiguration(let text)? = error else {
            Issue.record("expected invalidConfiguration, got \(String(describing: error))")
            return
        }
        #expect(text.contains("CONVEYOR_QUEUE_TYPE"))
        #expect(text.contains("fast"))
        // Classic queues carry no delivery limit (RabbitMQ has none for them); a priority queue stays classic.
        let classic = TaskQueueTopology(priorityQueues: ["urgent": 5], queueType: .classic)
        #expect(classic.queue(named: "jobs").queueType == .classic)
        #expect(classic.queue(named: "jobs").arguments["x-delivery-limit"] == nil)
        #expect(classic.queue(named: "urgent").maxPriority == 5)
        #expect(TaskQueueTopology().queue(named: "jobs").queueType == .quorum)
    }

    @Test("an input that is not an object is refused when submitted")
    func nonObjectInput() {
        enum Scalar: TaskDefinition {
            static let name = "examples.scalar"
            typealias Input = Int
            typealias Output = Int
        }
        #expect(throws: TaskInputError.self) { try Scalar.encodeInput(3) }
    }
}

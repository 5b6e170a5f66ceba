import ConveyorIO
import Distributed

/// An actor's id: the random id of its registry record (`P actor:<id>`) and of its mailbox queue.
public struct ConveyorActorID: Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The actor's durable mailbox: `conveyor.actor.<id>`.
    public var queue: String { "conveyor.actor." + rawValue }
    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Records a call's arguments as JSON values: a call message's body is their array.
public struct ConveyorInvocationEncoder: DistributedTargetInvocationEncoder {
    public typealias SerializationRequirement = Codable
    var arguments: [JSONValue] = []
    var generics: [String] = []

    public mutating func recordGenericSubstitution<T>(_ type: T.Type) throws {
        generics.append(_mangledTypeName(type) ?? String(reflecting: type))
    }

    public mutating func recordArgument<Value: Codable>(_ argument: RemoteCallArgument<Value>) throws {
        arguments.append(try JSONValue(encoding: argument.value))
    }

    public mutating func recordErrorType<E: Error>(_ type: E.Type) throws {}
    public mutating func recordReturnType<R: Codable>(_ type: R.Type) throws {}
    public mutating func doneRecording() throws {}
}

/// Hands a host the arguments of one call, decoded from the call message's JSON array.
public struct ConveyorInvocationDecoder: DistributedTargetInvocationDecoder {
    public typealias SerializationRequirement = Codable
    let arguments: [JSONValue]
    let generics: [String]
    var next = 0

    public init(arguments: [JSONValue], generics: [String] = []) {
        self.arguments = arguments
        self.generics = generics
    }

    public mutating func decodeGenericSubstitutions() throws -> [Any.Type] {
        try generics.map { name in
            guard let type = _typeByName(name) else { throw ActorInvocationError("unknown generic type \(name)") }
            return type
        }
    }

    public mutating func decodeNextArgument<Argument: Codable>() throws -> Argument {
        guard next < arguments.count else {
            throw ActorInvocationError("the call has \(arguments.count) arguments; more were expected")
        }
        defer { next += 1 }
        do {
            return try arguments[next].decode(as: Argument.self)
        } catch {
            throw ActorInvocationError("argument \(next + 1) is not a \(Argument.self): \(error)")
        }
    }

    public mutating func decodeErrorType() throws -> Any.Type? { nil }
    public mutating func decodeReturnType() throws -> Any.Type? { nil }
}

/// A call that cannot be decoded or dispatched on its host.
public struct ActorInvocationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Collects what a hosted method returned or threw, for the host to record.
public final class ConveyorResultHandler: DistributedTargetInvocationResultHandler {
    public typealias SerializationRequirement = Codable

    /// The call's outcome: its return value as JSON (`null` for `Void`), or its error.
    public enum Outcome: Sendable {
        case value(JSONValue)
        case error(type: String, message: String)
    }

    private let outcome = LockedValue<Outcome?>(nil)

    public init() {}

    /// The outcome, once the target returned or threw.
    public var result: Outcome? { outcome.current }

    public func onReturn<Success: Codable>(value: Success) async throws {
        let json: Outcome
        do {
            json = .value(try JSONValue(encoding: value))
        } catch {
            json = .error(type: "EncodingError", message: "the return value does not encode as JSON: \(error)")
        }
        outcome.withLock { $0 = json }
    }

    public func onReturnVoid() async throws {
        outcome.withLock { $0 = .value(.null) }
    }

    public func onThrow<Err: Error>(error: Err) async throws {
        let failure = TaskFailure(error)
        outcome.withLock { $0 = .error(type: failure.type, message: failure.message) }
    }
}

// ConveyorResultHandler is Sendable: its only state is the LockedValue.
extension ConveyorResultHandler: Sendable {}

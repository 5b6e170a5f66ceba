import Conveyor
import ConveyorAMQP
import ConveyorIO
import DequeModule

/// The calls of one concurrency group waiting to run, in arrival order, and how many run now.
final class ActorLane: Sendable {
    let limit: Int
    private let state = LockedValue<(waiting: Deque<ActorCall>, running: Int)>(([], 0))

    init(limit: Int) { self.limit = max(1, limit) }

    /// Queues `call`; `true` when the caller should start one more drainer (``next()`` until `nil`).
    func submit(_ call: ActorCall) -> Bool {
        state.withLock { state in
            state.waiting.append(call)
            if state.running < limit {
                state.running += 1
                return true
            }
            return false
        }
    }

    /// The next call for a drainer, or `nil` (the drainer then ends).
    func next() -> ActorCall? {
        state.withLock { state in
            if let next = state.waiting.popFirst() { return next }
            state.running -= 1
            return nil
        }
    }
}

/// A mailbox message being run: acknowledged (or requeued) once every call it holds is done.
final class CallMessage: Sendable {
    let delivery: AMQPDelivery
    private let state: LockedValue<(remaining: Int, requeue: Bool)>

    init(_ delivery: AMQPDelivery, calls: Int) {
        self.delivery = delivery
        self.state = LockedValue((max(calls, 1), false))
    }

    /// One of its calls is done (`requeue`: it did not run here and is for the next host). Returns `nil` while
    /// calls remain, else whether the message goes back to the mailbox: a redelivery skips the calls recorded.
    func finish(requeue: Bool) -> Bool? {
        state.withLock { state in
            state.remaining -= 1
            if requeue { state.requeue = true }
            return state.remaining == 0 ? state.requeue : nil
        }
    }
}

/// One call to run: from an `actor-call` message, or one element of an `actor-calls` message
/// (docs/PROTOCOL.md §10).
struct ActorCall: Sendable {
    let message: CallMessage
    let callID: String
    let method: String
    /// `nil` when the call's arguments are not a JSON array: it fails with `ActorInvocationError`.
    let arguments: [JSONValue]?
    let generics: [String]

    /// The calls of `delivery`, or `nil` when it holds none (an `actor-create`, another kind, or an
    /// `actor-calls` body that is not an array of calls).
    static func calls(of delivery: AMQPDelivery, kind: String) -> [ActorCall]? {
        switch kind {
        case "actor-call":
            let (arguments, generics) = Self.arguments(try? JSONValue(json: delivery.body))
            return [
                ActorCall(
                    message: CallMessage(delivery, calls: 1), callID: delivery.properties.correlationId ?? "",
                    method: delivery.properties.headers[ActorHeader.method]?.stringValue ?? "",
                    arguments: arguments, generics: generics)
            ]
        case "actor-calls":
            guard case .array(let elements)? = try? JSONValue(json: delivery.body), !elements.isEmpty else {
                return nil
            }
            var parsed: [(call: String, method: String, body: JSONValue)] = []
            for element in elements {
                guard case .object(let object) = element, let call = object["call"]?.stringValue, !call.isEmpty,
                    let method = object["method"]?.stringValue
                else { return nil }
                parsed.append((call, method, element))
            }
            let message = CallMessage(delivery, calls: parsed.count)
            return parsed.map { call, method, body in
                let (arguments, generics) = Self.arguments(body)
                return ActorCall(
                    message: message, callID: call, method: method, arguments: arguments, generics: generics)
            }
        default:
            return nil
        }
    }

    /// A call's arguments: a JSON array, or an object with `args` (and `generics` for a generic method).
    static func arguments(_ body: JSONValue?) -> ([JSONValue]?, [String]) {
        switch body {
        case .array(let values)?: return (values, [])
        case .object(let object)?:
            // No `args` is a call without arguments, as before batches existed.
            let values: [JSONValue]
            switch object["args"] {
            case .array(let array)?: values = array
            case nil: values = []
            default: return (nil, [])
            }
            if case .array(let names)? = object["generics"] { return (values, names.compactMap(\.stringValue)) }
            return (values, [])
        default: return (nil, [])
        }
    }
}

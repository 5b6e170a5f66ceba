/// A generator as producers and workers share it: a task whose implementation yields a sequence of elements that
/// reach any reader as they are produced (DESIGN §6, docs/PROTOCOL.md "Generators").
///
/// ```swift
/// enum Count: StreamDefinition {
///     static let name = "examples.count"
///     struct Input: Codable, Sendable { var n: Int }
///     typealias Element = Int
/// }
/// for try await value in try await client.stream(Count.self, .init(n: 10)) { print(value) }
/// ```
///
/// A generator is a task like any other (same message, claim, retries, limits, revocation); its result is the number
/// of items it produced, so ``ConveyorClient/submit(_:_:options:)`` also works and returns a ref to that count.
/// Its message carries `conveyor_kind` = `stream`.
public protocol StreamDefinition: TaskDefinition where Output == Int {
    /// What the generator yields; each element travels as one JSON text.
    associatedtype Element: Codable & Sendable
}

import ConveyorIO
import Distributed

/// A fixed set of actors that share work, like Ray's `ActorPool`: each input goes to the next idle actor, one
/// call per actor at a time.
///
/// ```swift
/// let pool = ActorPool(actors)
/// let squares = try await pool.map(inputs) { actor, x in try await actor.square(x) }
/// ```
public struct ActorPool<Act: DistributedActor>: Sendable {
    public let actors: [Act]

    /// A pool of `actors` (at least one).
    public init(_ actors: [Act]) {
        precondition(!actors.isEmpty, "an actor pool needs at least one actor")
        self.actors = actors
    }

    /// Runs `body` for every input on the pool's actors and returns the outputs in the order of `inputs`.
    ///
    /// - Throws: the first error a call throws (the calls still running are cancelled).
    public func map<Input: Sendable, Output: Sendable>(
        _ inputs: [Input], _ body: @escaping @Sendable (Act, Input) async throws -> Output
    ) async throws -> [Output] {
        var outputs = [Output?](repeating: nil, count: inputs.count)
        for try await (index, output) in indexedResults(inputs, body) { outputs[index] = output }
        return outputs.map { output in
            guard let output else { preconditionFailure("every input produced an output") }
            return output
        }
    }

    /// Runs `body` for every input on the pool's actors and yields the outputs as they complete.
    ///
    /// - Throws: (from the sequence) the first error a call throws.
    public func mapUnordered<Input: Sendable, Output: Sendable>(
        _ inputs: [Input], _ body: @escaping @Sendable (Act, Input) async throws -> Output
    ) -> AsyncThrowingStream<Output, any Error> {
        let indexed = indexedResults(inputs, body)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await (_, output) in indexed { continuation.yield(output) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// `(input index, output)` pairs as the calls complete: one loop per actor takes the next input.
    func indexedResults<Input: Sendable, Output: Sendable>(
        _ inputs: [Input], _ body: @escaping @Sendable (Act, Input) async throws -> Output
    ) -> AsyncThrowingStream<(Int, Output), any Error> {
        let actors = self.actors
        return AsyncThrowingStream { continuation in
            let task = Task {
                let cursor = NextIndex()
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for actor in actors {
                            group.addTask {
                                while let index = cursor.take(below: inputs.count) {
                                    continuation.yield((index, try await body(actor, inputs[index])))
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// The next input index of a pool's map, shared by its per-actor loops.
final class NextIndex: Sendable {
    private let next = LockedValue(0)

    func take(below count: Int) -> Int? {
        next.withLock { next in
            guard next < count else { return nil }
            defer { next += 1 }
            return next
        }
    }
}

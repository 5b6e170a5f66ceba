import Conveyor
import ConveyorAMQP
import ConveyorRedis
import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle

extension ConveyorGateway {
    func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("tasks") { request, _ in await self.answer { try await self.submit(request) } }
        router.get("tasks/:id") { _, context in
            await self.answer { try await self.status(context.parameters.require("id")) }
        }
        router.get("tasks/:id/result") { request, context in
            await self.answer { try await self.result(context.parameters.require("id"), request: request) }
        }
        router.delete("tasks/:id") { request, context in
            await self.answer { try await self.cancel(context.parameters.require("id"), request: request) }
        }
        router.get("healthz") { _, _ in await self.health() }
    }

    // MARK: - Routes

    /// `POST /tasks`: 202 with `{"id", "queue", "state": "PENDING"}` and a `Location` once the broker confirmed.
    func submit(_ request: Request) async throws -> Response {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw GatewayError(
                .contentTooLarge, "PayloadTooLarge",
                "the request body is over \(configuration.maxBodyBytes) bytes; nothing was submitted")
        }
        let json: JSONValue
        do {
            json = try JSONValue(json: body.readableBytesView)
        } catch {
            throw GatewayError(.badRequest, "MalformedJSON", "the request body is not JSON: \(error)")
        }
        let submission = try TaskSubmission(json: json, now: Date())
        let queue = submission.options.queue.isEmpty ? client.configuration.defaultQueue : submission.options.queue
        if let allowed = configuration.allowedQueues, !allowed.contains(queue) {
            throw GatewayError(
                .forbidden, "QueueNotAllowed",
                "queue '\(queue)' is not one this gateway submits to (\(allowed.sorted().joined(separator: ", ")))")
        }
        let ref = try await client.submit(
            name: submission.name, args: submission.args, kwargs: submission.kwargs, options: submission.options)
        return Self.json(
            .accepted,
            ["id": .string(ref.id), "queue": .string(queue), "state": .string(TaskState.pending.rawValue)],
            location: "/tasks/\(ref.id)")
    }

    /// `GET /tasks/{id}`: what Redis knows; a task it does not know is PENDING, as in Celery.
    func status(_ id: String) async throws -> Response {
        Self.json(.ok, try await client.status(id).jsonValue)
    }

    /// `GET /tasks/{id}/result[?wait=SECONDS]`: 200 with the outcome once the task is ready (SUCCESS with
    /// `result`, FAILURE with `error`, REVOKED with `reason`); 202 with its state while it is not (and
    /// `"timed_out": true` when a wait ran out).
    func result(_ id: String, request: Request) async throws -> Response {
        let wait = try Self.seconds(request.uri.queryParameters.get("wait"), name: "wait")
        guard let wait else { return Self.answer(id, try await client.currentResult(of: id)) }
        let limit = min(Duration.clampedSeconds(wait), configuration.maxWait)
        let client = client
        do {
            // A shutdown does not wait for long polls: they end early and say they timed out.
            let result = try await cancelWhenGracefulShutdown { try await client.awaitResult(of: id, timeout: limit) }
            return Self.answer(id, result, waited: true)
        } catch is CancellationError {
            return Self.answer(id, .notReady(try await client.status(id).state), waited: true)
        }
    }

    /// A result's answer: 200 with the outcome once ready, 202 with the state (and `timed_out` after a wait) before.
    static func answer(_ id: String, _ result: TaskResult, waited: Bool = false) -> Response {
        var object: [String: JSONValue] = ["id": .string(id)]
        switch result {
        case .success(let value):
            object["state"] = .string(TaskState.success.rawValue)
            object["result"] = value
        case .failure(let failure):
            object["state"] = .string(TaskState.failure.rawValue)
            object["error"] = ["type": .string(failure.type), "message": .string(failure.message)]
        case .revoked(let reason):
            object["state"] = .string(TaskState.revoked.rawValue)
            object["reason"] = .string(reason)
        case .notReady(let state):
            object["state"] = .string(state.rawValue)
            if waited { object["timed_out"] = true }
            return json(.accepted, .object(object))
        }
        return json(.ok, .object(object))
    }

    /// `DELETE /tasks/{id}[?reason=TEXT]`: `{"id", "outcome"}`, the outcome `revoked` (it will not run),
    /// `running` (its worker is told to stop it) or `finished` (with the `state` it already had, which is kept).
    func cancel(_ id: String, request: Request) async throws -> Response {
        let reason = request.uri.queryParameters.get("reason") ?? "cancelled"
        var object: [String: JSONValue] = ["id": .string(id)]
        switch try await client.cancel(id, reason: reason) {
        case .revoked:
            object["outcome"] = "revoked"
        case .running(let worker):
            object["outcome"] = "running"
            object["worker"] = .string(worker)
        case .alreadyFinished(let state):
            object["outcome"] = "finished"
            object["state"] = .string(state.rawValue)
        }
        return Self.json(.ok, .object(object))
    }

    /// `GET /healthz`: asks Redis for a PING and the broker for the default queue, each within two seconds.
    func health() async -> Response {
        var checks: [String: JSONValue] = [:]
        var healthy = true
        do {
            _ = try await client.redis.send(RedisCommand("PING"), timeout: .seconds(2))
            checks["redis"] = "ok"
        } catch {
            healthy = false
            checks["redis"] = .string("\(error)")
        }
        do {
            _ = try await client.broker.queueInfo(client.configuration.defaultQueue, timeout: .seconds(2))
            checks["broker"] = "ok"
        } catch {
            healthy = false
            checks["broker"] = .string("\(error)")
        }
        checks["status"] = healthy ? "ok" : "unavailable"
        return Self.json(healthy ? .ok : .serviceUnavailable, .object(checks))
    }

    // MARK: - Answers

    /// Runs a route, turning what it throws into a JSON error answer: the caller's mistakes are 4xx with what to
    /// fix, servers that cannot be reached are 503, anything else is a 500 that is logged.
    func answer(_ route: () async throws -> Response) async -> Response {
        do {
            return try await route()
        } catch let error as GatewayError {
            return Self.error(error.status, type: error.type, message: error.message)
        } catch let error as ConveyorError {
            switch error {
            case .payloadTooLarge:
                return Self.error(.contentTooLarge, type: "PayloadTooLarge", message: error.description)
            case .queueFull:
                return Self.error(.tooManyRequests, type: "QueueFull", message: error.description)
            case .queueMismatch:
                return Self.error(.conflict, type: "QueueMismatch", message: error.description)
            case .closed, .timeout:
                return Self.error(.serviceUnavailable, type: "Unavailable", message: error.description)
            case .revoked, .resultDecoding, .invalidConfiguration:
                return internalError(error)
            }
        } catch let error as RedisError {
            return Self.error(.serviceUnavailable, type: "RedisUnavailable", message: error.description)
        } catch let error as AMQPError {
            switch error {
            case .accessRefused:
                return Self.error(.forbidden, type: "AccessRefused", message: "\(error)")
            case .preconditionFailed, .resourceLocked:
                return Self.error(.conflict, type: "QueueMismatch", message: "\(error)")
            case .invalidArgument, .notFound:
                return Self.error(.badRequest, type: "BadRequest", message: "\(error)")
            default:
                return Self.error(.serviceUnavailable, type: "BrokerUnavailable", message: "\(error)")
            }
        } catch {
            return internalError(error)
        }
    }

    private func internalError(_ error: any Error) -> Response {
        logger.error("request failed", metadata: ["error": "\(error)"])
        return Self.error(.internalServerError, type: "InternalError", message: "\(error)")
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue, location: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let location { headers[.location] = location }
        return Response(
            status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.jsonBytes())))
    }

    static func error(_ status: HTTPResponse.Status, type: String, message: String) -> Response {
        json(status, ["error": ["type": .string(type), "message": .string(message)]])
    }

    /// A query parameter of seconds: absent, or a finite number of zero or more.
    static func seconds(_ text: String?, name: String) throws(GatewayError) -> Double? {
        guard let text else { return nil }
        guard let value = Double(text), value >= 0, value.isFinite else {
            throw GatewayError(.badRequest, "BadParameter", "\(name) must be zero or more seconds, got '\(text)'")
        }
        return value
    }
}

/// Answers the errors Hummingbird raises itself (an unknown path, a method a route does not take) in the gateway's
/// JSON shape, so that every answer is a JSON object.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let message = error.body ?? "\(request.method) \(request.uri.path): \(error.status.reasonPhrase)"
            return ConveyorGateway.error(
                error.status, type: error.status == .notFound ? "NotFound" : "HTTPError", message: message)
        }
    }
}

/// A request the gateway refuses, with the status and the words that say why.
struct GatewayError: Error {
    let status: HTTPResponse.Status
    let type: String
    let message: String

    init(_ status: HTTPResponse.Status, _ type: String, _ message: String) {
        self.status = status
        self.type = type
        self.message = message
    }
}

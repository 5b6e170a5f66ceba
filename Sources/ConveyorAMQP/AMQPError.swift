/// Everything ConveyorAMQP throws.
///
/// Channel errors carry the broker's own text (for example `PRECONDITION_FAILED - inequivalent arg 'x-max-length'
/// for queue 'jobs' ...`); after one, the client has already reopened the channel, so the connection keeps working.
public enum AMQPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The URL could not be parsed; the text says why.
    case invalidURL(String)
    /// Nobody accepted a TCP connection at `host:port`.
    case connectionRefused(host: String, port: Int)
    /// The host name did not resolve.
    case hostNotFound(String)
    /// The broker refused the user name or password.
    case authenticationFailed(user: String)
    /// 403 ACCESS_REFUSED (or 530 NOT_ALLOWED for a virtual host): the user may not do this.
    case accessRefused(String)
    /// 404 NOT_FOUND: a queue or exchange that does not exist.
    case notFound(String)
    /// 405 RESOURCE_LOCKED: for example an exclusive queue owned by another connection.
    case resourceLocked(String)
    /// 406 PRECONDITION_FAILED: for example a queue redeclared with other arguments.
    case preconditionFailed(String)
    /// Another channel error the broker reported, with its reply code and text.
    case channelError(code: Int, text: String)
    /// The operation's deadline passed while connected (a publish not confirmed in time, a connect attempt).
    case timeout
    /// The connection broke (or stayed down until the operation's deadline); the text says why.
    case connectionLost(String)
    /// The connection was closed by its owner.
    case closed
    /// The broker did not accept a published message (basic.nack), e.g. a full `reject-publish` queue.
    case nacked
    /// A `mandatory` message could not be routed to any queue (basic.return).
    case returned(replyCode: Int, replyText: String)
    /// Some messages of a batch failed; the others were confirmed.
    indirect case batchFailed([AMQPBatchFailure])
    /// The broker cancelled a consumer (its queue was deleted) and it could not be resubscribed.
    case consumerCancelled(queue: String, reason: String)
    /// A value the client cannot send (e.g. headers larger than a frame).
    case invalidArgument(String)
    /// The broker or the library reported something unexpected.
    case protocolError(String)

    public var description: String {
        switch self {
        case .invalidURL(let why): "invalid AMQP URL: \(why)"
        case .connectionRefused(let host, let port): "connection refused by \(host):\(port) (nothing listening?)"
        case .hostNotFound(let host): "host '\(host)' not found"
        case .authenticationFailed(let user): "authentication failed for user '\(user)'"
        case .accessRefused(let text): "access refused: \(text)"
        case .notFound(let text): "not found: \(text)"
        case .resourceLocked(let text): "resource locked: \(text)"
        case .preconditionFailed(let text): "precondition failed: \(text)"
        case .channelError(let code, let text): "channel error \(code): \(text)"
        case .timeout: "timed out"
        case .connectionLost(let why): "connection lost: \(why)"
        case .closed: "the connection was closed"
        case .nacked: "the broker rejected the message (basic.nack)"
        case .returned(let code, let text): "the message was returned as unroutable (\(code) \(text))"
        case .batchFailed(let failures):
            "\(failures.count) message(s) of the batch failed: "
                + failures.prefix(5).map { "#\($0.index): \($0.error)" }.joined(separator: "; ")
                + (failures.count > 5 ? "; ..." : "")
        case .consumerCancelled(let queue, let reason): "consumer of '\(queue)' cancelled: \(reason)"
        case .invalidArgument(let text): "invalid argument: \(text)"
        case .protocolError(let text): "protocol error: \(text)"
        }
    }

    /// The error for a channel.close or connection.close the broker sent.
    static func fromReply(code: Int, text: String) -> AMQPError {
        switch code {
        case 403: .accessRefused(text)
        case 404: .notFound(text)
        case 405: .resourceLocked(text)
        case 406: .preconditionFailed(text)
        case 530: .accessRefused(text)
        default: .channelError(code: code, text: text)
        }
    }
}

/// One message of a batch that was not confirmed.
public struct AMQPBatchFailure: Sendable, Hashable, CustomStringConvertible {
    /// Its position in the batch passed to ``AMQPConnection/publish(batch:timeout:)``.
    public var index: Int
    /// Why: ``AMQPError/nacked``, ``AMQPError/returned(replyCode:replyText:)``, ``AMQPError/timeout``, ...
    public var error: AMQPError

    public init(index: Int, error: AMQPError) {
        self.index = index
        self.error = error
    }

    public var description: String { "#\(index): \(error)" }
}

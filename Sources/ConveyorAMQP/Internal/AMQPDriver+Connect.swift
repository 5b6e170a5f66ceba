import CRabbitMQ
import ConveyorIO
import Foundation
import Logging

extension AMQPDriver {
    /// Opens a connection (trying every URL once on the very first attempt, then the next URL per attempt),
    /// logs in, and restores the session: channels, topology, consumers. Unconfirmed publishes are rewritten by
    /// the first pass.
    func connect(timeout: Duration) throws {
        let urls = configuration.urls
        guard !urls.isEmpty else { throw AMQPError.invalidURL("no broker URL configured") }
        let attempts = hasConnected ? 1 : urls.count
        var lastError: any Error = AMQPError.closed
        for _ in 0..<attempts {
            let url = urls[urlIndex % urls.count]
            urlIndex += 1
            do {
                try open(url, timeout: timeout)
                hasConnected = true
                shared.withLock {
                    $0.url = url
                    $0.blockedReason = nil
                }
                logger.debug("connected", metadata: ["amqp.url": "\(url)"])
                try restoreSession()
                return
            } catch {
                lastError = error
                destroyConnection()
                if attempts > 1 {
                    logger.debug("connect failed", metadata: ["amqp.url": "\(url)", "error": "\(error)"])
                }
            }
        }
        throw lastError
    }

    private func open(_ url: AMQPURL, timeout: Duration) throws {
        guard let connection = amqp_new_connection() else { throw AMQPError.protocolError("out of memory") }
        self.connection = connection
        guard let socket = amqp_tcp_socket_new(connection) else { throw AMQPError.protocolError("out of memory") }
        var connectTimeout = timeval(timeout)
        let status = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &connectTimeout)
        switch status {
        case AMQP_STATUS_OK.rawValue:
            break
        case AMQP_STATUS_TIMEOUT.rawValue:
            throw AMQPError.timeout
        case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED.rawValue:
            throw AMQPError.hostNotFound(url.host)
        default:
            throw AMQPError.connectionRefused(host: url.host, port: url.port)
        }
        let fd = amqp_get_sockfd(connection)
        SocketOptions.disableNagle(fd: fd)
        SocketOptions.enableKeepalive(fd: fd, idle: configuration.policy.heartbeat)
        amqp_set_handshake_timeout(connection, &connectTimeout)
        var rpcTimeout = timeval(configuration.policy.operationTimeout)
        amqp_set_rpc_timeout(connection, &rpcTimeout)
        try login(url)
    }

    private func login(_ url: AMQPURL) throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        let encoder = PoolEncoder(pool: pool)
        defer { recyclePool() }
        var properties = try encoder.table(clientProperties)
        let heartbeat = Int32(max(0, configuration.policy.heartbeat.seconds.rounded()))
        let reply = conveyor_amqp_login_plain(
            connection, url.virtualHost, 0, 131_072, heartbeat, &properties, url.user, url.password)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            let (code, text) = Self.closeReason(reply.reply)
            if code == 403 { throw AMQPError.authenticationFailed(user: url.user) }
            throw AMQPError.fromReply(code: code, text: text)
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            // Brokers that do not honour authentication_failure_close just drop the socket after a bad login.
            if reply.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue {
                throw AMQPError.authenticationFailed(user: url.user)
            }
            throw AMQPError.connectionLost("login failed: \(Self.statusText(reply.library_error))")
        default:
            throw AMQPError.connectionLost("login failed: the broker closed the connection")
        }
    }

    /// What the broker shows for this connection, and the extensions this client handles. rabbitmq-c advertises
    /// none by default; without `consumer_cancel_notify` a deleted queue would leave its consumer silently dead.
    private var clientProperties: AMQPTable {
        [
            "product": "Conveyor",
            "version": "0.1.0",
            "platform": "Swift",
            "information": .string("ConveyorAMQP over rabbitmq-c \(String(cString: amqp_version()))"),
            "connection_name": .string(configuration.connectionName),
            "capabilities": [
                "consumer_cancel_notify": true,
                "connection.blocked": true,
                "publisher_confirms": true,
                "basic.nack": true,
                "authentication_failure_close": true,
                "exchange_exchange_bindings": true,
                "per_consumer_qos": true,
            ],
        ]
    }

    /// Opens the control and publish channels, re-declares the recorded topology and resubscribes consumers.
    private func restoreSession() throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        amqp_channel_open(connection, Self.controlChannel)
        try checkReply(channel: Self.controlChannel, "channel.open")
        try openPublishChannel()
        for entry in topology.entries {
            do {
                try declare(entry)
            } catch let failure as ChannelFailure {
                logger.warning("re-declaring topology failed", metadata: ["error": "\(failure.error)"])
            }
        }
        for consumer in consumers.values.sorted(by: { $0.id < $1.id }) where !consumer.cancelled {
            do {
                try subscribe(consumer)
            } catch let failure as ChannelFailure {
                logger.warning(
                    "resubscribing failed", metadata: ["amqp.queue": "\(consumer.queue)", "error": "\(failure.error)"])
                remove(consumer, error: failure.error)
            }
        }
        needsRepair = false
    }

    func openPublishChannel() throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        amqp_channel_open(connection, Self.publishChannel)
        try checkReply(channel: Self.publishChannel, "channel.open")
        amqp_confirm_select(connection, Self.publishChannel)
        try checkReply(channel: Self.publishChannel, "confirm.select")
        publisher.open = true
        publisher.nextTag = 1
    }

    // MARK: - Replies

    /// Throws unless the last RPC succeeded: ``ChannelFailure`` when the broker closed the channel (answered and
    /// scheduled for reopening here), an ``AMQPError`` that means the connection is lost otherwise.
    func checkReply(channel: amqp_channel_t, _ what: StaticString) throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        let reply = amqp_get_rpc_reply(connection)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            let (code, text) = Self.closeReason(reply.reply)
            if reply.reply.id == Method.channelClose {
                try sendChannelCloseOk(channel)
                channelClosed(channel, error: AMQPError.fromReply(code: code, text: text), text: text)
                throw ChannelFailure(error: AMQPError.fromReply(code: code, text: text))
            }
            if reply.reply.id == Method.connectionClose {
                var ok = amqp_connection_close_ok_t()
                _ = amqp_send_method(connection, 0, Method.connectionCloseOk, &ok)
            }
            throw AMQPError.connectionLost("\(what): \(text)")
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw AMQPError.connectionLost("\(what): \(Self.statusText(reply.library_error))")
        default:
            throw AMQPError.connectionLost("\(what): the broker closed the connection")
        }
    }

    func sendChannelCloseOk(_ channel: amqp_channel_t) throws {
        guard let connection else { return }
        var ok = amqp_channel_close_ok_t()
        let status = amqp_send_method(connection, channel, Method.channelCloseOk, &ok)
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError.connectionLost("channel.close-ok: \(Self.statusText(status))")
        }
    }

    /// The reply code and text of a channel.close or connection.close method.
    static func closeReason(_ method: amqp_method_t) -> (Int, String) {
        guard let decoded = method.decoded else { return (0, "no reason given") }
        switch method.id {
        case Method.channelClose:
            let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            return (Int(close.reply_code), CDecoder.string(close.reply_text))
        case Method.connectionClose:
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            return (Int(close.reply_code), CDecoder.string(close.reply_text))
        default:
            return (0, "unexpected method \(String(cString: amqp_method_name(method.id)))")
        }
    }

    static func statusText(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }
}

/// AMQP 0-9-1 method ids (class << 16 | method) this client handles itself.
enum Method {
    static let connectionClose: amqp_method_number_t = 0x000A_0032
    static let connectionCloseOk: amqp_method_number_t = 0x000A_0033
    static let connectionBlocked: amqp_method_number_t = 0x000A_003C
    static let connectionUnblocked: amqp_method_number_t = 0x000A_003D
    static let channelFlow: amqp_method_number_t = 0x0014_0014
    static let channelFlowOk: amqp_method_number_t = 0x0014_0015
    static let channelClose: amqp_method_number_t = 0x0014_0028
    static let channelCloseOk: amqp_method_number_t = 0x0014_0029
    static let basicCancel: amqp_method_number_t = 0x003C_001E
    static let basicCancelOk: amqp_method_number_t = 0x003C_001F
    static let basicReturn: amqp_method_number_t = 0x003C_0032
    static let basicDeliver: amqp_method_number_t = 0x003C_003C
    static let basicAck: amqp_method_number_t = 0x003C_0050
    static let basicNack: amqp_method_number_t = 0x003C_0078
}

extension timeval {
    init(_ duration: Duration) {
        let micros = max(0, Int64(duration.seconds * 1_000_000))
        self.init(tv_sec: Int(micros / 1_000_000), tv_usec: Int(micros % 1_000_000))
    }
}

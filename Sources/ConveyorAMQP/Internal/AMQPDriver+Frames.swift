import CRabbitMQ
import Foundation
import Logging

extension AMQPDriver {
    /// Reads and handles the frames that are already available (queued by an RPC, buffered, or on the socket),
    /// without blocking. Always makes at least one library call, which is where rabbitmq-c sends heartbeats and
    /// notices a silent broker.
    func readFrames() throws -> Int {
        guard let connection else { return 0 }
        var frame = amqp_frame_t()
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        var count = 0
        while count < Self.readBudget {
            let status = amqp_simple_wait_frame_noblock(connection, &frame, &zero)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            guard status == AMQP_STATUS_OK.rawValue else {
                throw AMQPError.connectionLost(Self.statusText(status))
            }
            count += 1
            try handle(frame)
        }
        return count
    }

    private func handle(_ frame: amqp_frame_t) throws {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            try handleMethod(frame.payload.method, channel: frame.channel)
        case AMQP_FRAME_HEADER:
            let header = frame.payload.properties
            guard let decoded = header.decoded else { return }
            let properties = decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee
            let size = Int(clamping: header.body_size)
            if frame.channel == Self.publishChannel {
                if publisher.returned.header(properties, bodySize: size) { completeReturn() }
            } else if let consumer = consumer(on: frame.channel) {
                if consumer.assembler.header(properties, bodySize: size) { completeDelivery(consumer) }
            }
        case AMQP_FRAME_BODY:
            let fragment = frame.payload.body_fragment
            if frame.channel == Self.publishChannel {
                if publisher.returned.body(fragment) { completeReturn() }
            } else if let consumer = consumer(on: frame.channel) {
                if consumer.assembler.body(fragment) { completeDelivery(consumer) }
            }
        default:
            break  // Heartbeats are consumed by rabbitmq-c.
        }
    }

    private func handleMethod(_ method: amqp_method_t, channel: amqp_channel_t) throws {
        guard let decoded = method.decoded else { return }
        switch method.id {
        case Method.basicDeliver:
            guard let consumer = consumer(on: channel), consumer.channelOpen else { return }
            let deliver = decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            if !CDecoder.equals(deliver.exchange, &consumer.lastExchange) {
                consumer.lastExchange = CDecoder.string(deliver.exchange)
            }
            if !CDecoder.equals(deliver.routing_key, &consumer.lastRoutingKey) {
                consumer.lastRoutingKey = CDecoder.string(deliver.routing_key)
            }
            consumer.assembler.start(
                .deliver(tag: deliver.delivery_tag, redelivered: deliver.redelivered != 0),
                exchange: consumer.lastExchange, routingKey: consumer.lastRoutingKey)
        case Method.basicAck:
            guard channel == Self.publishChannel else { return }
            let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(tag: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false)
        case Method.basicNack:
            guard channel == Self.publishChannel else { return }
            let nack = decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(tag: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true)
        case Method.basicReturn:
            guard channel == Self.publishChannel else { return }
            let returned = decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            publisher.returned.start(
                .returned(code: Int(returned.reply_code), text: CDecoder.string(returned.reply_text)),
                exchange: CDecoder.string(returned.exchange), routingKey: CDecoder.string(returned.routing_key))
        case Method.basicCancel:
            let cancel = decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            if cancel.nowait == 0, let connection {
                var ok = amqp_basic_cancel_ok_t(consumer_tag: cancel.consumer_tag)
                _ = amqp_send_method(connection, channel, Method.basicCancelOk, &ok)
            }
            if let consumer = consumer(on: channel) { consumerCancelledByBroker(consumer) }
        case Method.channelClose:
            let (code, text) = Self.closeReason(method)
            try sendChannelCloseOk(channel)
            channelClosed(channel, error: AMQPError.fromReply(code: code, text: text), text: text)
        case Method.connectionClose:
            let (_, text) = Self.closeReason(method)
            if let connection {
                var ok = amqp_connection_close_ok_t()
                _ = amqp_send_method(connection, 0, Method.connectionCloseOk, &ok)
            }
            throw AMQPError.connectionLost(text)
        case Method.connectionBlocked:
            let blocked = decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            let reason = CDecoder.string(blocked.reason)
            logger.warning("the broker blocked this connection", metadata: ["reason": "\(reason)"])
            shared.withLock { $0.blockedReason = reason }
        case Method.connectionUnblocked:
            logger.info("the broker unblocked this connection")
            shared.withLock { $0.blockedReason = nil }
        case Method.channelFlow:
            let flow = decoded.assumingMemoryBound(to: amqp_channel_flow_t.self).pointee
            if let connection {
                var ok = amqp_channel_flow_ok_t(active: flow.active)
                _ = amqp_send_method(connection, channel, Method.channelFlowOk, &ok)
            }
        default:
            logger.debug(
                "unexpected method", metadata: ["method": "\(String(cString: amqp_method_name(method.id)))"])
        }
    }

    /// The broker closed `channel` (already answered with close-ok): end that channel's incarnation and schedule
    /// what restores it. The control channel is reopened at once: it carries no asynchronous traffic, and the next
    /// RPC needs it.
    func channelClosed(_ channel: amqp_channel_t, error: AMQPError, text: String) {
        logger.debug("the broker closed a channel", metadata: ["channel": "\(channel)", "error": "\(error)"])
        if channel == Self.controlChannel {
            if let connection {
                amqp_channel_open(connection, channel)
                if amqp_get_rpc_reply(connection).reply_type != AMQP_RESPONSE_NORMAL {
                    // The connection is in trouble; the next RPC on it reports how.
                    logger.warning("reopening the control channel failed")
                }
            }
        } else if channel == Self.publishChannel {
            publishChannelClosed(error: error, text: text)
        } else if let consumer = consumer(on: channel) {
            consumer.channelLost()
            if !consumer.cancelled {
                logger.warning(
                    "consumer channel closed by the broker; resubscribing",
                    metadata: ["amqp.queue": "\(consumer.queue)", "error": "\(error)"])
                consumer.needsResubscribe = true
            }
            needsRepair = true
        }
    }

    func consumer(on channel: amqp_channel_t) -> ConsumerState? {
        let index = Int(channel)
        return index < consumersByChannel.count ? consumersByChannel[index] : nil
    }

    private func completeDelivery(_ consumer: ConsumerState) {
        let content = consumer.assembler
        guard case .deliver(let tag, let redelivered) = content.kind, consumer.channelOpen else { return }
        guard consumer.tracker.delivered(tag: tag) else {
            logger.warning("out-of-order delivery tag ignored", metadata: ["tag": "\(tag)"])
            return
        }
        if consumer.cancelled {
            // Arrived between our basic.cancel and its cancel-ok: nobody will read it, so give it back.
            _ = consumer.tracker.settle(tag: tag, kind: .nackRequeue)
            return
        }
        if consumer.batch.isEmpty { delivering.append(consumer) }
        consumer.batch.append(
            AMQPDelivery(
                body: content.takeBody(), properties: content.properties, exchange: content.exchange,
                routingKey: content.routingKey, redelivered: redelivered, deliveryTag: tag, settler: consumer.settler,
                incarnation: consumer.incarnation))
    }
}

import CRabbitMQ
import Logging

extension AMQPDriver {
    /// Subscribes a new consumer on a channel of its own.
    func startConsumer(_ request: ConsumeRequest) throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        let maxChannel = Int(amqp_get_channel_max(connection))
        var channel = Int(Self.firstConsumerChannel)
        while channel < consumersByChannel.count, consumersByChannel[channel] != nil { channel += 1 }
        if maxChannel > 0, channel > maxChannel {
            throw ChannelFailure(error: .invalidArgument("no free channel for another consumer (max \(maxChannel))"))
        }
        let consumer = ConsumerState(
            request: request, id: request.settler.consumerID, channel: amqp_channel_t(channel))
        if consumersByChannel.count <= channel {
            consumersByChannel.append(contentsOf: repeatElement(nil, count: channel + 1 - consumersByChannel.count))
        }
        consumers[consumer.id] = consumer
        consumersByChannel[channel] = consumer
        do {
            try subscribe(consumer)
        } catch let failure as ChannelFailure {
            forget(consumer)
            throw failure
        }
    }

    /// (Re)opens the consumer's channel if needed, sets its prefetch and starts basic.consume.
    func subscribe(_ consumer: ConsumerState) throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        let encoder = PoolEncoder(pool: pool)
        if !consumer.channelOpen {
            amqp_channel_open(connection, consumer.channel)
            try checkReply(channel: consumer.channel, "channel.open")
            consumer.channelOpen = true
            consumer.incarnation = nextIncarnation
            nextIncarnation += 1
            consumer.tracker.reset()
            consumer.settler.incarnation.store(consumer.incarnation, ordering: .releasing)
        }
        amqp_basic_qos(connection, consumer.channel, 0, consumer.prefetch, 0)
        try checkReply(channel: consumer.channel, "basic.qos")
        amqp_basic_consume(
            connection, consumer.channel, try encoder.bytes(consumer.queue), try encoder.bytes(consumer.tag), 0, 0, 0,
            try encoder.table(consumer.arguments))
        try checkReply(channel: consumer.channel, "basic.consume")
        consumer.subscribed = true
        consumer.needsResubscribe = false
        consumer.cancelledByBroker = false
    }

    /// Changes the prefetch of a running consumer.
    ///
    /// RabbitMQ applies a per-consumer `basic.qos` only to consumers started after it, so the subscription is
    /// restarted (same tag, same channel: unacked deliveries stay valid and can still be settled).
    func setPrefetch(_ consumer: ConsumerState, _ prefetch: UInt16) throws {
        consumer.prefetch = prefetch
        guard let connection, consumer.subscribed, consumer.channelOpen, !consumer.cancelled else { return }
        let encoder = PoolEncoder(pool: pool)
        amqp_basic_cancel(connection, consumer.channel, try encoder.bytes(consumer.tag))
        try checkReply(channel: consumer.channel, "basic.cancel")
        consumer.subscribed = false
        try subscribe(consumer)
    }

    /// Cancels the subscription on the client's request. The channel stays open until every delivery already
    /// received is settled, then closes.
    func cancel(_ consumer: ConsumerState) throws {
        guard !consumer.cancelled else { return }
        consumer.cancelled = true
        consumer.needsResubscribe = false
        if let connection, consumer.subscribed, consumer.channelOpen {
            let encoder = PoolEncoder(pool: pool)
            amqp_basic_cancel(connection, consumer.channel, try encoder.bytes(consumer.tag))
            do {
                try checkReply(channel: consumer.channel, "basic.cancel")
            } catch is ChannelFailure {
                // The channel is gone, and with it the subscription.
            }
            consumer.subscribed = false
        }
        // Deliveries that arrive until cancel-ok still reach the iterator, before the end of the sequence.
        finishPass()
        consumer.buffer.finish(error: nil)
        try closeIfDrained(consumer)
    }

    /// The broker cancelled the subscription (RabbitMQ does when the queue is deleted). Resubscribe after
    /// re-declaring the queue if it was declared through this connection; otherwise end the consumer.
    func consumerCancelledByBroker(_ consumer: ConsumerState) {
        consumer.subscribed = false
        guard !consumer.cancelled else { return }
        if topology.queue(named: consumer.queue) != nil {
            logger.warning(
                "the broker cancelled a consumer; re-declaring its queue and resubscribing",
                metadata: ["amqp.queue": "\(consumer.queue)"])
            consumer.cancelledByBroker = true
            consumer.needsResubscribe = true
            needsRepair = true
        } else {
            logger.warning("the broker cancelled a consumer", metadata: ["amqp.queue": "\(consumer.queue)"])
            consumer.cancelled = true
            consumer.buffer.finish(
                error: .consumerCancelled(
                    queue: consumer.queue,
                    reason: "the broker cancelled the subscription (queue deleted?) and the queue was not declared "
                        + "through this connection"))
            needsRepair = true
        }
    }

    /// Sends the merged acks, nacks and rejects of every consumer.
    func flushSettlements() throws {
        guard let connection else { return }
        for consumer in consumers.values where consumer.tracker.hasPending && consumer.channelOpen {
            let channel = consumer.channel
            try consumer.tracker.flush { frame in
                let status: Int32
                switch frame {
                case .ack(let tag, let multiple):
                    status = amqp_basic_ack(connection, channel, tag, multiple ? 1 : 0)
                case .nack(let tag, let requeue):
                    status = amqp_basic_nack(connection, channel, tag, 0, requeue ? 1 : 0)
                case .reject(let tag, let requeue):
                    status = amqp_basic_reject(connection, channel, tag, requeue ? 1 : 0)
                }
                if status != AMQP_STATUS_OK.rawValue {
                    throw AMQPError.connectionLost("basic.ack: \(Self.statusText(status))")
                }
            }
            if consumer.cancelled { try closeIfDrained(consumer) }
        }
    }

    /// Restores what frames or errors broke, once rabbitmq-c holds no queued frames of the old channel incarnations:
    /// reopens the publish channel, resubscribes consumers, closes cancelled consumers' drained channels.
    func repair() throws {
        guard needsRepair, let connection, amqp_frames_enqueued(connection) == 0 else { return }
        needsRepair = false
        if !publisher.open { try openPublishChannel() }
        for consumer in consumers.values.sorted(by: { $0.id < $1.id }) {
            if consumer.cancelled {
                try closeIfDrained(consumer)
                continue
            }
            guard consumer.needsResubscribe else { continue }
            do {
                if consumer.cancelledByBroker {
                    for entry in topology.entries(restoring: consumer.queue) { try declare(entry) }
                }
                try subscribe(consumer)
                logger.info("consumer resubscribed", metadata: ["amqp.queue": "\(consumer.queue)"])
            } catch let failure as ChannelFailure {
                logger.warning(
                    "resubscribing failed", metadata: ["amqp.queue": "\(consumer.queue)", "error": "\(failure.error)"])
                consumer.cancelled = true
                consumer.needsResubscribe = false
                consumer.buffer.finish(error: failure.error)
                try closeIfDrained(consumer)
            }
        }
    }

    /// Closes a cancelled consumer's channel once it has nothing left to settle, and forgets the consumer.
    func closeIfDrained(_ consumer: ConsumerState) throws {
        guard consumer.cancelled, consumer.tracker.isEmpty, consumer.batch.isEmpty else { return }
        if let connection, consumer.channelOpen {
            consumer.channelOpen = false
            amqp_channel_close(connection, consumer.channel, Int32(AMQP_REPLY_SUCCESS))
            do {
                try checkReply(channel: consumer.channel, "channel.close")
            } catch is ChannelFailure {
                // Closed either way.
            }
        }
        forget(consumer)
    }

    /// Ends a consumer for good: its sequence finishes (with `error`, if any) and it is forgotten.
    func remove(_ consumer: ConsumerState, error: AMQPError?) {
        consumer.cancelled = true
        consumer.channelLost()
        consumer.buffer.finish(error: error)
        forget(consumer)
    }

    private func forget(_ consumer: ConsumerState) {
        consumers[consumer.id] = nil
        let index = Int(consumer.channel)
        if index < consumersByChannel.count, consumersByChannel[index] === consumer { consumersByChannel[index] = nil }
        consumer.settler.incarnation.store(0, ordering: .releasing)
    }
}

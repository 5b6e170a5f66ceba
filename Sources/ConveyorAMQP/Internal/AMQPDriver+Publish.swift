import CRabbitMQ
import DequeModule
import Logging

extension AMQPDriver {
    /// Writes queued messages on the publish channel (at most ``writeBudget`` per pass), oldest first.
    func flushUnsent() throws {
        guard let connection, publisher.open else { return }
        let encoder = PoolEncoder(pool: pool)
        var written = 0
        while written < Self.writeBudget, let next = publisher.unsent.popFirst() {
            let request = next.request
            guard request.isLive, !request.settled[next.index] else { continue }
            let item = request.items[next.index]
            let tag = publisher.nextTag
            var properties: amqp_basic_properties_t
            var exchange: amqp_bytes_t
            var routingKey: amqp_bytes_t
            do {
                properties = try encoder.properties(
                    item.message.properties, publishSequence: item.mandatory ? tag : nil)
                exchange = try exchangeCache.bytes(for: item.exchange, encoder: encoder)
                routingKey = try routingKeyCache.bytes(for: item.routingKey, encoder: encoder)
            } catch {
                // Nothing was written: fail this message only.
                if request.settle(next.index, error: error) { completed.append(request) }
                continue
            }
            publisher.nextTag += 1
            // Recorded before writing: if the write fails the message is unconfirmed and gets republished.
            publisher.pending.append(PendingPublish(request: request, index: next.index, tag: tag))
            let status = item.message.body.withUnsafeBytes { body in
                amqp_basic_publish(
                    connection, Self.publishChannel, exchange, routingKey, item.mandatory ? 1 : 0, 0, &properties,
                    amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
            }
            written += 1
            guard status == AMQP_STATUS_OK.rawValue else {
                if status == AMQP_STATUS_TABLE_TOO_BIG.rawValue || status == AMQP_STATUS_BAD_AMQP_DATA.rawValue {
                    // This message cannot be encoded; part of it may be on the wire, so the connection is reset too.
                    publisher.pending.removeLast()
                    let error = AMQPError.invalidArgument("cannot encode the message: \(Self.statusText(status))")
                    if request.settle(next.index, error: error) { completed.append(request) }
                }
                throw AMQPError.connectionLost("publish: \(Self.statusText(status))")
            }
        }
    }

    /// Settles publishes confirmed by a basic.ack (or refused by a basic.nack) up to `tag`.
    func confirm(tag: UInt64, multiple: Bool, nacked: Bool) {
        if multiple {
            while let first = publisher.pending.first, first.tag <= tag {
                publisher.pending.removeFirst()
                if !first.done { settle(first, nacked: nacked) }
            }
            return
        }
        guard let first = publisher.pending.first, tag >= first.tag else { return }
        let index = Int(tag - first.tag)
        guard index < publisher.pending.count, !publisher.pending[index].done else { return }
        settle(publisher.pending[index], nacked: nacked)
        publisher.pending[index].done = true
        while let front = publisher.pending.first, front.done { publisher.pending.removeFirst() }
    }

    private func settle(_ record: PendingPublish, nacked: Bool) {
        let error: AMQPError? = nacked ? .nacked : record.returned
        if record.request.settle(record.index, error: error) { completed.append(record.request) }
    }

    /// A basic.return finished arriving: mark its publish (found by the sequence header) as returned; its
    /// basic.ack follows and fails it.
    func completeReturn() {
        let content = publisher.returned
        guard case .returned(let code, let text) = content.kind else { return }
        guard let stamp = content.properties.headers[publishSequenceHeader]?.intValue,
            let first = publisher.pending.first, stamp >= 0, UInt64(stamp) >= first.tag
        else {
            logger.debug("a returned message matched no pending publish", metadata: ["reply": "\(code) \(text)"])
            return
        }
        let index = Int(UInt64(stamp) - first.tag)
        guard index < publisher.pending.count else { return }
        publisher.pending[index].returned = .returned(replyCode: code, replyText: text)
    }

    /// The broker closed the publish channel (e.g. 404 publishing to a missing exchange). The messages to the
    /// exchange the error names fail with it; the others are written again on the reopened channel. If the error
    /// names none of them, all fail: retrying them could fail forever.
    func publishChannelClosed(error: AMQPError, text: String) {
        let pending = publisher.pending
        publisher.pending.removeAll()
        publisher.open = false
        publisher.returned.reset()
        func named(_ record: PendingPublish) -> Bool {
            let exchange = record.request.items[record.index].exchange
            return !exchange.isEmpty && text.contains("'\(exchange)'")
        }
        let anyNamed = pending.contains(where: named)
        var retry: Deque<UnsentPublish> = []
        for record in pending where !record.done && record.request.isLive {
            if !anyNamed || named(record) {
                if record.request.settle(record.index, error: error) { completed.append(record.request) }
            } else {
                retry.append(UnsentPublish(request: record.request, index: record.index))
            }
        }
        logger.warning(
            "the broker closed the publish channel",
            metadata: ["error": "\(error)", "failed": "\(pending.count - retry.count)", "retried": "\(retry.count)"])
        retry.append(contentsOf: publisher.unsent)
        publisher.unsent = retry
        needsRepair = true
    }
}

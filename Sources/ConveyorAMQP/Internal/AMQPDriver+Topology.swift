import CRabbitMQ

extension AMQPDriver {
    /// Runs one topology RPC on the control channel, and records (or forgets) what it declared.
    func runTopology(_ operation: TopologyRequest.Operation) throws -> TopologyRequest.Result {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        let channel = Self.controlChannel
        let encoder = PoolEncoder(pool: pool)
        switch operation {
        case .declareExchange(let exchange):
            try declare(.exchange(exchange))
            topology.record(.exchange(exchange))
            return .done
        case .deleteExchange(let name, let ifUnused):
            amqp_exchange_delete(connection, channel, try encoder.bytes(name), ifUnused ? 1 : 0)
            try checkReply(channel: channel, "exchange.delete")
            topology.removeExchange(name)
            return .done
        case .declareQueue(let queue):
            let info = try declareQueue(queue, passive: false)
            if !queue.name.isEmpty { topology.record(.queue(queue)) }
            return .queue(info)
        case .queueInfo(let name):
            do {
                return .queue(try declareQueue(AMQPQueue(name), passive: true))
            } catch let failure as ChannelFailure {
                if case .notFound = failure.error { return .queue(nil) }
                throw failure
            }
        case .deleteQueue(let name, let ifUnused, let ifEmpty):
            let ok = amqp_queue_delete(connection, channel, try encoder.bytes(name), ifUnused ? 1 : 0, ifEmpty ? 1 : 0)
            try checkReply(channel: channel, "queue.delete")
            topology.removeQueue(name)
            return .count(Int(ok?.pointee.message_count ?? 0))
        case .purgeQueue(let name):
            let ok = amqp_queue_purge(connection, channel, try encoder.bytes(name))
            try checkReply(channel: channel, "queue.purge")
            return .count(Int(ok?.pointee.message_count ?? 0))
        case .bind(let binding):
            try declare(.binding(binding))
            topology.record(.binding(binding))
            return .done
        case .unbind(let binding):
            let routingKey = try encoder.bytes(binding.routingKey)
            let arguments = try encoder.table(binding.arguments)
            switch binding.destination {
            case .queue(let queue):
                amqp_queue_unbind(
                    connection, channel, try encoder.bytes(queue), try encoder.bytes(binding.source), routingKey,
                    arguments)
                try checkReply(channel: channel, "queue.unbind")
            case .exchange(let destination):
                amqp_exchange_unbind(
                    connection, channel, try encoder.bytes(destination), try encoder.bytes(binding.source), routingKey,
                    arguments)
                try checkReply(channel: channel, "exchange.unbind")
            }
            topology.removeBinding(binding)
            return .done
        }
    }

    /// Declares one recorded entry (used for new declarations and to replay the record after a reconnect).
    func declare(_ entry: TopologyRecord.Entry) throws {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        let channel = Self.controlChannel
        let encoder = PoolEncoder(pool: pool)
        switch entry {
        case .exchange(let exchange):
            amqp_exchange_declare(
                connection, channel, try encoder.bytes(exchange.name), try encoder.bytes(exchange.kind.rawValue), 0,
                exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0, exchange.internal ? 1 : 0,
                try encoder.table(exchange.arguments))
            try checkReply(channel: channel, "exchange.declare")
        case .queue(let queue):
            _ = try declareQueue(queue, passive: false)
        case .binding(let binding):
            let routingKey = try encoder.bytes(binding.routingKey)
            let arguments = try encoder.table(binding.arguments)
            switch binding.destination {
            case .queue(let queue):
                amqp_queue_bind(
                    connection, channel, try encoder.bytes(queue), try encoder.bytes(binding.source), routingKey,
                    arguments)
                try checkReply(channel: channel, "queue.bind")
            case .exchange(let destination):
                amqp_exchange_bind(
                    connection, channel, try encoder.bytes(destination), try encoder.bytes(binding.source), routingKey,
                    arguments)
                try checkReply(channel: channel, "exchange.bind")
            }
        }
    }

    private func declareQueue(_ queue: AMQPQueue, passive: Bool) throws -> AMQPQueueInfo {
        guard let connection else { throw AMQPError.connectionLost("not connected") }
        let encoder = PoolEncoder(pool: pool)
        let ok = amqp_queue_declare(
            connection, Self.controlChannel, try encoder.bytes(queue.name), passive ? 1 : 0, queue.durable ? 1 : 0,
            queue.exclusive ? 1 : 0, queue.autoDelete ? 1 : 0,
            passive ? amqp_empty_table : try encoder.table(queue.arguments))
        try checkReply(channel: Self.controlChannel, "queue.declare")
        guard let ok else { throw AMQPError.protocolError("queue.declare-ok missing") }
        return AMQPQueueInfo(
            name: CDecoder.string(ok.pointee.queue), messageCount: Int(ok.pointee.message_count),
            consumerCount: Int(ok.pointee.consumer_count))
    }
}

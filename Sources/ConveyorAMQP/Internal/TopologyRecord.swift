/// Every exchange, queue and binding declared through a connection, in order, so a reconnect can declare them
/// again before resubscribing (a non-durable queue is gone after a broker restart; a durable one is unchanged).
///
/// - Important: owned by the connection's thread.
struct TopologyRecord {
    enum Entry: Hashable {
        case exchange(AMQPExchange)
        case queue(AMQPQueue)
        case binding(AMQPBinding)
    }

    private(set) var entries: [Entry] = []

    mutating func record(_ entry: Entry) {
        switch entry {
        case .exchange(let exchange):
            if let index = entries.firstIndex(where: {
                if case .exchange(let e) = $0 { e.name == exchange.name } else { false }
            }) {
                entries[index] = entry
                return
            }
        case .queue(let queue):
            if let index = entries.firstIndex(where: {
                if case .queue(let q) = $0 { q.name == queue.name } else { false }
            }) {
                entries[index] = entry
                return
            }
        case .binding:
            if entries.contains(entry) { return }
        }
        entries.append(entry)
    }

    mutating func removeQueue(_ name: String) {
        entries.removeAll { entry in
            switch entry {
            case .queue(let queue): queue.name == name
            case .binding(let binding): binding.destination == .queue(name)
            case .exchange: false
            }
        }
    }

    mutating func removeExchange(_ name: String) {
        entries.removeAll { entry in
            switch entry {
            case .exchange(let exchange): exchange.name == name
            case .binding(let binding): binding.source == name || binding.destination == .exchange(name)
            case .queue: false
            }
        }
    }

    mutating func removeBinding(_ binding: AMQPBinding) {
        entries.removeAll { $0 == .binding(binding) }
    }

    func queue(named name: String) -> AMQPQueue? {
        for case .queue(let queue) in entries where queue.name == name { return queue }
        return nil
    }

    /// The queue and what it needs to be reachable again: the exchanges it is bound to and those bindings.
    func entries(restoring queueName: String) -> [Entry] {
        guard queue(named: queueName) != nil else { return [] }
        var sources: Set<String> = []
        for case .binding(let binding) in entries where binding.destination == .queue(queueName) {
            sources.insert(binding.source)
        }
        return entries.filter { entry in
            switch entry {
            case .queue(let queue): queue.name == queueName
            case .exchange(let exchange): sources.contains(exchange.name)
            case .binding(let binding): binding.destination == .queue(queueName)
            }
        }
    }
}

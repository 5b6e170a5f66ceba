import DequeModule

/// How a delivery is settled.
enum SettleKind: UInt8, Sendable {
    case ack = 1
    case nackRequeue = 2
    case nackDrop = 3
    case rejectRequeue = 4
    case rejectDrop = 5
}

/// One settlement to send: what ``SettleTracker/flush(_:)`` decided.
enum SettleFrame: Equatable {
    case ack(tag: UInt64, multiple: Bool)
    case nack(tag: UInt64, requeue: Bool)
    case reject(tag: UInt64, requeue: Bool)
}

/// The outstanding delivery tags of one channel incarnation, and the acks, nacks and rejects waiting to be sent.
///
/// Merging: the contiguous settled prefix of outstanding tags goes out as one `basic.ack multiple=true` (nacks and
/// rejects in it are sent individually, splitting the run); a settlement behind an outstanding tag goes out alone.
/// Tags on a channel are consecutive from 1, which keeps this a deque indexed by `tag - base`.
///
/// - Important: owned by the connection's thread.
struct SettleTracker {
    private static let outstanding: UInt8 = 0
    private static let sent: UInt8 = 0xFF

    /// The tag of `states[0]`.
    private(set) var base: UInt64 = 1
    private var states: Deque<UInt8> = []
    /// Tags settled since the last flush that were not at the front then.
    private var scattered: [UInt64] = []
    private var pendingCount = 0

    /// Whether any delivery is still unsettled or a settlement is not yet sent.
    var isEmpty: Bool { states.isEmpty }
    /// Settlements waiting for ``flush(_:)``.
    var hasPending: Bool { pendingCount > 0 }

    /// Records a new delivery. Returns false for a tag that is not the next one (which the broker never sends).
    mutating func delivered(tag: UInt64) -> Bool {
        if states.isEmpty && tag >= base {
            base = tag
        }
        let next = base + UInt64(states.count)
        guard tag >= next else { return false }
        // Defensive: a gap would mean tags we never saw; they cannot be settled, so treat them as done.
        for _ in next..<tag { states.append(Self.sent) }
        states.append(Self.outstanding)
        return true
    }

    /// Marks `tag` settled. Returns false if the tag is unknown or already settled.
    mutating func settle(tag: UInt64, kind: SettleKind) -> Bool {
        guard tag >= base else { return false }
        let index = Int(tag - base)
        guard index < states.count, states[index] == Self.outstanding else { return false }
        states[index] = kind.rawValue
        pendingCount += 1
        if index > 0 { scattered.append(tag) }
        return true
    }

    /// Sends what is pending, in as few frames as it can.
    mutating func flush(_ send: (SettleFrame) throws -> Void) rethrows {
        guard pendingCount > 0 else { return }
        var runEnd: UInt64 = 0
        var runLength = 0
        while let state = states.first, state != Self.outstanding {
            let tag = base
            switch state {
            case Self.sent:
                break
            case SettleKind.ack.rawValue:
                runEnd = tag
                runLength += 1
                pendingCount -= 1
            default:
                if runLength > 0 {
                    try send(.ack(tag: runEnd, multiple: runLength > 1))
                    runLength = 0
                }
                try send(Self.frame(tag: tag, state: state))
                pendingCount -= 1
            }
            states.removeFirst()
            base += 1
        }
        if runLength > 0 { try send(.ack(tag: runEnd, multiple: runLength > 1)) }
        for tag in scattered where tag >= base {
            let index = Int(tag - base)
            let state = states[index]
            guard state != Self.sent, state != Self.outstanding else { continue }
            try send(Self.frame(tag: tag, state: state))
            states[index] = Self.sent
            pendingCount -= 1
        }
        scattered.removeAll(keepingCapacity: true)
    }

    /// Forgets everything: the channel incarnation these tags belong to is gone.
    mutating func reset() {
        base = 1
        states.removeAll()
        scattered.removeAll()
        pendingCount = 0
    }

    private static func frame(tag: UInt64, state: UInt8) -> SettleFrame {
        switch SettleKind(rawValue: state) {
        case .ack: .ack(tag: tag, multiple: false)
        case .nackRequeue: .nack(tag: tag, requeue: true)
        case .nackDrop: .nack(tag: tag, requeue: false)
        case .rejectRequeue: .reject(tag: tag, requeue: true)
        case .rejectDrop, nil: .reject(tag: tag, requeue: false)
        }
    }
}

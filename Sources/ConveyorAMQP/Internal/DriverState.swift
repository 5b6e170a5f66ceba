import CRabbitMQ
import DequeModule

/// A message handed to the thread and not yet written on the current connection.
struct UnsentPublish {
    let request: PublishRequest
    let index: Int
}

/// A message written on the publish channel and waiting for its basic.ack / basic.nack.
struct PendingPublish {
    let request: PublishRequest
    let index: Int
    let tag: UInt64
    /// Confirmed out of order (not at the front when its ack came).
    var done = false
    /// Set by a basic.return, which precedes the ack of an unroutable mandatory message.
    var returned: AMQPError?
}

/// The publish channel: confirm mode, its delivery-tag counter, and the confirms it waits for.
///
/// - Important: owned by the connection's thread.
struct PublisherState {
    var open = false
    /// The delivery tag the next publish gets (confirm mode numbers publishes from 1 per channel).
    var nextTag: UInt64 = 1
    /// In tag order.
    var pending: Deque<PendingPublish> = []
    /// In original publish order: messages from before a connection loss come first.
    var unsent: Deque<UnsentPublish> = []
    let returned = ContentAssembler()
}

/// Assembles a message from its method, header and body frames (basic.deliver or basic.return).
///
/// A class reused for every message of its channel, so the large property struct and the body are filled in
/// place instead of being copied from frame to frame.
///
/// - Important: owned by the connection's thread.
final class ContentAssembler {
    enum Kind {
        case deliver(tag: UInt64, redelivered: Bool)
        case returned(code: Int, text: String)
    }

    private enum Stage {
        case idle
        case awaitingHeader
        case awaitingBody
    }

    private var stage = Stage.idle
    private(set) var kind = Kind.deliver(tag: 0, redelivered: false)
    private(set) var exchange = ""
    private(set) var routingKey = ""
    // Per-message state of the owner thread: skip the runtime exclusivity checks.
    @exclusivity(unchecked) private(set) var properties = AMQPProperties(deliveryMode: nil)
    private var bodySize = 0
    @exclusivity(unchecked) private var body: [UInt8] = []
    private var strings = PropertyStringCache()

    /// A method frame began a new message (dropping any unfinished one).
    func start(_ kind: Kind, exchange: String, routingKey: String) {
        self.kind = kind
        self.exchange = exchange
        self.routingKey = routingKey
        stage = .awaitingHeader
    }

    /// A header frame; true when the message is complete (no body).
    func header(_ decoded: amqp_basic_properties_t, bodySize: Int) -> Bool {
        guard stage == .awaitingHeader else {
            stage = .idle
            return false
        }
        properties = CDecoder.properties(decoded, cache: &strings)
        self.bodySize = bodySize
        body = []
        if bodySize == 0 {
            stage = .idle
            return true
        }
        body.reserveCapacity(bodySize)
        stage = .awaitingBody
        return false
    }

    /// A body frame; true when the message is complete.
    func body(_ fragment: amqp_bytes_t) -> Bool {
        guard stage == .awaitingBody else {
            stage = .idle
            return false
        }
        body.append(contentsOf: UnsafeRawBufferPointer(start: fragment.bytes, count: fragment.len))
        guard body.count >= bodySize else { return false }
        stage = .idle
        return true
    }

    /// The completed message's body, moved out.
    func takeBody() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &body)
        return taken
    }

    func reset() {
        stage = .idle
        body = []
    }
}

/// One consumer as the connection's thread knows it: its own channel, subscription and outstanding tags.
///
/// Each consumer gets its own channel so that its prefetch is its own and a channel error (say a consumer
/// timeout) affects nobody else.
///
/// - Important: owned by the connection's thread.
final class ConsumerState {
    let id: UInt64
    let queue: String
    let tag: String
    var prefetch: UInt16
    let arguments: AMQPTable
    let channel: amqp_channel_t
    let buffer: DeliveryBuffer
    let settler: Settler

    /// Identifies the live channel incarnation (unique across the connection's life); 0 while closed.
    var incarnation: UInt64 = 0
    var channelOpen = false
    var subscribed = false
    /// Cancelled by the client: never resubscribed; its channel closes once its deliveries are settled.
    var cancelled = false
    /// The subscription must be restored (channel lost, or the broker cancelled it).
    var needsResubscribe = false
    /// The broker cancelled the subscription (its queue was deleted): re-declare the queue before resubscribing.
    var cancelledByBroker = false
    // Hot per-message state: exclusivity is guaranteed by the single owner thread, so skip the runtime checks.
    @exclusivity(unchecked) var tracker = SettleTracker()
    let assembler = ContentAssembler()
    /// Deliveries completed in this pass, handed to `buffer` at its end.
    @exclusivity(unchecked) var batch: [AMQPDelivery] = []
    // The last exchange and routing key seen: nearly every delivery repeats them, so their Strings are reused.
    var lastExchange = ""
    var lastRoutingKey = ""

    init(request: ConsumeRequest, id: UInt64, channel: amqp_channel_t) {
        self.id = id
        self.queue = request.queue
        self.tag = request.tag
        self.prefetch = request.prefetch
        self.arguments = request.arguments
        self.channel = channel
        self.buffer = request.buffer
        self.settler = request.settler
    }

    /// The channel is gone (closed by the broker, or the connection lost): forget its tags and deliveries.
    func channelLost() {
        channelOpen = false
        subscribed = false
        incarnation = 0
        settler.incarnation.store(0, ordering: .releasing)
        tracker.reset()
        assembler.reset()
        batch.removeAll()
        buffer.dropStale(current: 0)
    }
}

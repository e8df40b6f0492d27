/// A message as the pipeline sees it, whatever broker delivered it. Every
/// field comes from whoever published the message: untrusted.
package struct InboundMessage: Sendable {
    package var body: [UInt8]
    /// The size the broker announced. Over the broker adapter's limit the body
    /// was dropped while it was read (`bodyDiscarded`, `body` empty).
    package var bodySize: Int
    package var bodyDiscarded: Bool
    package var messageId: String?
    package var correlationId: String?
    package var replyTo: String?
    /// The headers that have a text form: strings (valid UTF-8) and integers
    /// (in decimal). Headers of other types are not in here.
    package var headers: [String: String]
    package var redelivered: Bool
    /// Opaque to the pipeline: identifies the delivery for ack (tag + channel incarnation).
    package var token: DeliveryToken
    /// Opaque to the pipeline: what the broker adapter keeps of the delivery
    /// (e.g. the original header table, passed on to a delay queue as it was).
    package var brokerContext: (any Sendable)?
    /// When the delivery reached this process: a wait for a free slot counts
    /// against the hold bound (`DARI_BRIDGE_MAX_HOLD_MS`).
    package var arrivedAt: ContinuousClock.Instant

    package init(body: [UInt8], messageId: String? = nil, correlationId: String? = nil, replyTo: String? = nil,
                headers: [String: String] = [:], redelivered: Bool = false, token: DeliveryToken,
                bodySize: Int? = nil, bodyDiscarded: Bool = false, brokerContext: (any Sendable)? = nil,
                arrivedAt: ContinuousClock.Instant = .now) {
        self.body = body
        self.bodySize = bodySize ?? body.count
        self.bodyDiscarded = bodyDiscarded
        self.messageId = messageId
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.headers = headers
        self.redelivered = redelivered
        self.token = token
        self.brokerContext = brokerContext
        self.arrivedAt = arrivedAt
    }
}

/// The header that carries the attempts already made through delay queues.
package let attemptsHeader = "x-dari-attempts"
/// Set by quorum queues on a redelivery: how often the message was returned before.
package let deliveryCountHeader = "x-delivery-count"

package struct DeliveryToken: Sendable, Hashable {
    package var tag: UInt64
    package var incarnation: UInt64
    package init(tag: UInt64, incarnation: UInt64) {
        self.tag = tag
        self.incarnation = incarnation
    }
}

package struct OutgoingMessage: Sendable, Equatable {
    package var exchange: String
    package var routingKey: String
    package var body: [UInt8]
    package var messageId: String
    package var correlationId: String?
    package var contentType: String = "application/json"
    package var persistent: Bool = true
    package var mandatory: Bool = false
    /// Text headers: the trace context (`traceparent`, `tracestate`).
    package var headers: [String: String] = [:]

    package init(exchange: String, routingKey: String, body: [UInt8], messageId: String, correlationId: String?, mandatory: Bool = false) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.messageId = messageId
        self.correlationId = correlationId
        self.mandatory = mandatory
    }
}

package enum PublishFailure: Error, Sendable, Equatable {
    /// A mandatory message could not be routed (e.g. the reply_to queue does not exist).
    case unroutable(String)
    /// Anything else: nacked, connection lost, not connected. Worth retrying.
    case transient(String)
}

/// What the pipeline needs from a broker. The RabbitMQ adapter lives in
/// DariBridgeApp; tests use an in-memory one.
package protocol MessageBroker: Sendable {
    /// Returns once the broker confirmed the (persistent) message.
    func publish(_ message: OutgoingMessage) async throws(PublishFailure)
    /// Moves a message to a delay queue that dead-letters it back to the input
    /// queue after `delay`, with `attempts` in its `x-dari-attempts` header.
    /// Returns once the broker confirmed it (then the delivery may be acked).
    func deferMessage(_ message: InboundMessage, attempts: Int, delay: Duration) async throws(PublishFailure)
    /// Acks a delivery; silently drops it when the delivery's channel is gone
    /// (the broker redelivers the message instead).
    func ack(_ token: DeliveryToken) async
    /// Hands a delivery that was not started back to the broker (reject with
    /// requeue); dropped like an ack when its channel is gone.
    func requeue(_ token: DeliveryToken) async
    /// Whether the delivery's channel is still the current one (its ack can
    /// still be sent). A waiting delivery of a dead channel is not started: the
    /// broker redelivers it.
    func isLive(_ token: DeliveryToken) -> Bool
}

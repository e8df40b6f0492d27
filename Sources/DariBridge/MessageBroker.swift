/// A message as the pipeline sees it, whatever broker delivered it.
public struct InboundMessage: Sendable {
    public var body: [UInt8]
    public var messageId: String?
    public var correlationId: String?
    public var replyTo: String?
    public var headers: [String: String]
    public var redelivered: Bool
    /// Opaque to the pipeline: identifies the delivery for ack (tag + channel incarnation).
    public var token: DeliveryToken

    public init(body: [UInt8], messageId: String? = nil, correlationId: String? = nil, replyTo: String? = nil,
                headers: [String: String] = [:], redelivered: Bool = false, token: DeliveryToken) {
        self.body = body
        self.messageId = messageId
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.headers = headers
        self.redelivered = redelivered
        self.token = token
    }
}

/// The header that carries the attempts already made through delay queues.
public let attemptsHeader = "x-dari-attempts"

public struct DeliveryToken: Sendable, Hashable {
    public var tag: UInt64
    public var incarnation: UInt64
    public init(tag: UInt64, incarnation: UInt64) {
        self.tag = tag
        self.incarnation = incarnation
    }
}

public struct OutgoingMessage: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var messageId: String
    public var correlationId: String?
    public var contentType: String = "application/json"
    public var persistent: Bool = true
    public var mandatory: Bool = false

    public init(exchange: String, routingKey: String, body: [UInt8], messageId: String, correlationId: String?, mandatory: Bool = false) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.messageId = messageId
        self.correlationId = correlationId
        self.mandatory = mandatory
    }
}

public enum PublishFailure: Error, Sendable, Equatable {
    /// A mandatory message could not be routed (e.g. the reply_to queue does not exist).
    case unroutable(String)
    /// Anything else: nacked, connection lost, not connected. Worth retrying.
    case transient(String)
}

/// What the pipeline needs from a broker. The RabbitMQ adapter lives in
/// DariBridgeApp; tests use an in-memory one.
public protocol MessageBroker: Sendable {
    /// Returns once the broker confirmed the (persistent) message.
    func publish(_ message: OutgoingMessage) async throws(PublishFailure)
    /// Moves a message to a delay queue that dead-letters it back to the input
    /// queue after `delay`, with `attempts` in its `x-dari-attempts` header.
    /// Returns once the broker confirmed it (then the delivery may be acked).
    func deferMessage(_ message: InboundMessage, attempts: Int, delay: Duration) async throws(PublishFailure)
    /// Acks a delivery; silently drops it when the delivery's channel is gone
    /// (the broker redelivers the message instead).
    func ack(_ token: DeliveryToken) async
}

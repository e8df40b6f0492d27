/// Message properties we read and write. Headers keep every AMQP field type.
public struct AMQPProperties: Sendable, Equatable {
    public var contentType: String?
    public var messageId: String?
    public var correlationId: String?
    public var replyTo: String?
    public var persistent: Bool
    public var expiration: String?
    public var timestamp: UInt64?
    public var headers: AMQPTable

    public init(contentType: String? = nil, messageId: String? = nil, correlationId: String? = nil,
                replyTo: String? = nil, persistent: Bool = false, expiration: String? = nil,
                timestamp: UInt64? = nil, headers: AMQPTable = AMQPTable()) {
        self.contentType = contentType
        self.messageId = messageId
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.persistent = persistent
        self.expiration = expiration
        self.timestamp = timestamp
        self.headers = headers
    }
}

/// One message delivered to a consumer. `channelIncarnation` identifies the
/// channel that delivered it: delivery tags are only meaningful on that channel,
/// so acks for an incarnation that is gone are dropped, never sent.
public struct AMQPDelivery: Sendable {
    public var body: [UInt8]
    public var properties: AMQPProperties
    public var deliveryTag: UInt64
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var consumerTag: String
    public var channelIncarnation: UInt64
    /// The body size the broker announced. When it was over the connection's
    /// `maxBodyBytes`, the body was read off the socket and discarded frame by
    /// frame, never held: `body` is then empty and `bodyDiscarded` true.
    public var bodySize: UInt64 = 0
    public var bodyDiscarded: Bool = false
}

/// A value in an argument table (queue arguments such as `x-message-ttl`).
public typealias AMQPArgument = AMQPFieldValue

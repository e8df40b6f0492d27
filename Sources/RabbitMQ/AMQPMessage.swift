/// Message properties we read and write. Header values are kept as strings
/// (integers are rendered in decimal; other field kinds are dropped).
public struct AMQPProperties: Sendable, Equatable {
    public var contentType: String?
    public var messageId: String?
    public var correlationId: String?
    public var replyTo: String?
    public var persistent: Bool
    public var expiration: String?
    public var timestamp: UInt64?
    public var headers: [String: String]

    public init(contentType: String? = nil, messageId: String? = nil, correlationId: String? = nil,
                replyTo: String? = nil, persistent: Bool = false, expiration: String? = nil,
                timestamp: UInt64? = nil, headers: [String: String] = [:]) {
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
}

/// A value in an argument table (queue arguments such as `x-message-ttl`).
public enum AMQPArgument: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)

    var field: CArena.Field {
        switch self {
        case .string(let s): return .string(s)
        case .int(let n): return .int(n)
        case .bool(let b): return .bool(b)
        }
    }
}

/// Message properties we read and write. Headers keep every AMQP field type.
package struct AMQPProperties: Sendable, Equatable {
    package var contentType: String?
    package var messageId: String?
    package var correlationId: String?
    package var replyTo: String?
    package var persistent: Bool
    package var expiration: String?
    package var timestamp: UInt64?
    package var headers: AMQPTable

    package init(contentType: String? = nil, messageId: String? = nil, correlationId: String? = nil,
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
package struct AMQPDelivery: Sendable {
    package var body: [UInt8]
    package var properties: AMQPProperties
    package var deliveryTag: UInt64
    package var redelivered: Bool
    package var exchange: String
    package var routingKey: String
    package var consumerTag: String
    package var channelIncarnation: UInt64
    /// The body size the broker announced. When it was over the connection's
    /// `maxBodyBytes`, the body was read off the socket and discarded frame by
    /// frame, never held: `body` is then empty and `bodyDiscarded` true.
    package var bodySize: UInt64 = 0
    package var bodyDiscarded: Bool = false
}

/// A value in an argument table (queue arguments such as `x-message-ttl`).
package typealias AMQPArgument = AMQPFieldValue

extension AMQPProperties {
    /// Why these properties cannot be sent in a frame of `frameMax` bytes, or nil.
    package func encodingProblem(frameMax: Int) -> String? {
        for (value, name) in [(contentType, "content_type"), (messageId, "message_id"), (correlationId, "correlation_id"),
                              (replyTo, "reply_to"), (expiration, "expiration")] {
            if let value, let problem = Self.shortStringProblem(value, name) { return problem }
        }
        // A content header is one frame: class, weight, body size, flags and the properties.
        let budget = max(0, frameMax - 8 - 14 - 6 * 256)
        if headers.encodedSize > budget {
            return "the header table (\(headers.encodedSize) bytes) does not fit in one frame"
        }
        return nil
    }

    static func shortStringProblem(_ value: String, _ name: String) -> String? {
        value.utf8.count > 255 ? "\(name) is \(value.utf8.count) bytes, over the 255 of a short string" : nil
    }

    /// `value` cut to at most 255 UTF-8 bytes at a character boundary (a short
    /// string's limit): what a property copied from a message may be sent as.
    package static func shortString(_ value: String?) -> String? {
        guard let value, value.utf8.count > 255 else { return value }
        var out = ""
        var bytes = 0
        for ch in value {
            bytes += ch.utf8.count
            if bytes > 255 { break }
            out.append(ch)
        }
        return out
    }
}

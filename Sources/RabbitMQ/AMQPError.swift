import CRabbitMQ

/// Errors from the broker or the connection, with the broker's reply code and
/// text where the broker sent one. `description` is short and bounded.
package struct AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable, Equatable {
        /// librabbitmq reported a socket/protocol error (see `libraryStatus`).
        case library
        /// The broker closed the channel (`channel.close`), e.g. 404 NOT_FOUND, 406 PRECONDITION_FAILED.
        case channelClosed
        /// The broker closed the connection (`connection.close`), e.g. 320 CONNECTION_FORCED, 403 ACCESS_REFUSED.
        case connectionClosed
        /// The broker nacked a publish.
        case nacked
        /// A mandatory publish could not be routed (`basic.return`).
        case returned
        /// The broker cancelled our consumer (queue deleted, node failure).
        case consumerCancelled
        /// The connection was closed by us, or had already failed.
        case closed
        /// Could not connect (TCP, TLS, login).
        case connect
        /// A publish whose properties cannot be encoded (a short string over 255
        /// bytes, a header table larger than a frame). Refused before a byte is
        /// written: the connection stays up.
        case unencodable
    }

    package var kind: Kind
    package var replyCode: UInt16?
    package var text: String
    package var libraryStatus: Int32?

    package init(kind: Kind, replyCode: UInt16? = nil, text: String, libraryStatus: Int32? = nil) {
        self.kind = kind
        self.replyCode = replyCode
        self.text = text
        self.libraryStatus = libraryStatus
    }

    static func library(_ status: Int32, _ context: String) -> AMQPError {
        let reason = String(cString: amqp_error_string2(status))
        return AMQPError(kind: .library, text: "\(context): \(reason)", libraryStatus: status)
    }

    /// librabbitmq gave up waiting for the broker's answer (an RPC timeout).
    package var isTimeout: Bool { kind == .library && libraryStatus == AMQP_STATUS_TIMEOUT.rawValue }

    package var description: String {
        if let replyCode {
            return "\(kind.rawValue) (\(replyCode)): \(text)"
        }
        return "\(kind.rawValue): \(text)"
    }
}

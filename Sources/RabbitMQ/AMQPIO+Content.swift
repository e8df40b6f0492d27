import CRabbitMQ
import Glibc

/// A message's content being read: after `basic.deliver` (or `basic.return`)
/// come one content header frame (properties and the body size) and body
/// frames of at most frame_max bytes each. Everything is copied out of
/// librabbitmq's frame memory as it arrives, so the pools can be released
/// between frames and a large body never sits in memory twice.
struct IncomingContent {
    enum Kind {
        case delivery(AMQPDelivery)
        case returned(exchange: String, routingKey: String, error: AMQPError)
    }

    var kind: Kind
    let maxBodyBytes: Int
    var headerSeen = false
    var bodySize: UInt64 = 0
    var received: UInt64 = 0
    var body: [UInt8] = []
    var discard = false
    var messageId: String?
    var properties = AMQPProperties()

    init(kind: Kind, maxBodyBytes: Int) {
        self.kind = kind
        self.maxBodyBytes = maxBodyBytes
    }

    var complete: Bool { headerSeen && received >= bodySize }
}

extension AMQPIO {
    func contentHeader(_ frame: amqp_frame_t) {
        guard var content = incoming, !content.headerSeen else {
            fail(AMQPError(kind: .library, text: "protocol error: a content header without a method"))
            return
        }
        let header = frame.payload.properties
        content.headerSeen = true
        content.bodySize = header.body_size
        if let decoded = header.decoded {
            content.properties = AMQPProperties(decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
        }
        if header.body_size > UInt64(max(0, content.maxBodyBytes)) {
            content.discard = true
        } else {
            content.body.reserveCapacity(Int(header.body_size))
        }
        incoming = content
        finishContentIfComplete()
    }

    func contentBody(_ frame: amqp_frame_t) {
        guard var content = incoming, content.headerSeen else {
            fail(AMQPError(kind: .library, text: "protocol error: a body frame without a content header"))
            return
        }
        let fragment = frame.payload.body_fragment
        content.received &+= UInt64(fragment.len)
        if content.received > content.bodySize {
            fail(AMQPError(kind: .library, text: "protocol error: more body than the content header announced"))
            return
        }
        if !content.discard, fragment.len > 0, let bytes = fragment.bytes {
            // Swift arrays are values: take the body out of `incoming` while
            // appending so it is not copied.
            incoming = nil
            content.body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: fragment.len))
        }
        incoming = content
        finishContentIfComplete()
    }

    private func finishContentIfComplete() {
        guard let content = incoming, content.complete else { return }
        incoming = nil
        switch content.kind {
        case .delivery(var delivery):
            delivery.properties = content.properties
            delivery.body = content.body
            delivery.bodySize = content.bodySize
            delivery.bodyDiscarded = content.discard
            dispatch(delivery)
        case .returned(let exchange, let routingKey, let error):
            markReturned(exchange: exchange, routingKey: routingKey, messageId: content.properties.messageId, error: error)
        }
    }
}

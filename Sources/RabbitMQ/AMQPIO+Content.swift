import CRabbitMQ
import Glibc

/// A message's content being read: after `basic.deliver` (or `basic.return`)
/// come one content header frame (properties and the body size) and body
/// frames of at most frame_max bytes each. Everything is copied out of
/// librabbitmq's frame memory as it arrives, so the pools can be released
/// between frames and a large body never sits in memory twice.
///
/// It is changed in place (`AMQPIO.withIncoming`) and moved out when complete:
/// copying it per frame retained and released every string of the delivery
/// each time (~150 reference-count operations per message).
struct IncomingContent {
    struct Returned {
        var exchange: String
        var routingKey: String
        var error: AMQPError
        var messageId: String?
    }

    /// The delivery being read; its properties and body are filled in place.
    var delivery: AMQPDelivery?
    /// Or a returned message (only its message id is kept, to match the publish).
    var returned: Returned?
    let maxBodyBytes: Int
    var headerSeen = false
    var bodySize: UInt64 = 0
    var received: UInt64 = 0
    var discard = false

    init(delivery: AMQPDelivery, maxBodyBytes: Int) {
        self.delivery = delivery
        self.maxBodyBytes = maxBodyBytes
    }

    init(returned: Returned) {
        self.returned = returned
        self.maxBodyBytes = 0
    }

    var complete: Bool { headerSeen && received >= bodySize }
}

extension AMQPIO {
    /// `body` on the content being read, in place.
    @inline(__always)
    func withIncoming<R>(_ body: (inout IncomingContent) -> R) -> R? {
        guard incoming != nil else { return nil }
        return body(&incoming!)
    }

    func contentHeader(_ frame: amqp_frame_t) {
        guard let seen = incoming?.headerSeen, !seen else {
            fail(AMQPError(kind: .library, text: "protocol error: a content header without a method"))
            return
        }
        let header = frame.payload.properties
        let properties = header.decoded.map { AMQPProperties($0.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee) } ?? AMQPProperties()
        withIncoming { content in
            content.headerSeen = true
            content.bodySize = header.body_size
            if header.body_size > UInt64(max(0, content.maxBodyBytes)) {
                content.discard = true
            } else if content.delivery != nil {
                content.delivery!.body.reserveCapacity(Int(header.body_size))
            }
            if content.delivery != nil {
                content.delivery!.properties = properties
            } else {
                content.returned?.messageId = properties.messageId
            }
        }
        finishContentIfComplete()
    }

    func contentBody(_ frame: amqp_frame_t) {
        guard incoming?.headerSeen == true else {
            fail(AMQPError(kind: .library, text: "protocol error: a body frame without a content header"))
            return
        }
        let fragment = frame.payload.body_fragment
        let tooMuch = withIncoming { content -> Bool in
            content.received &+= UInt64(fragment.len)
            if content.received > content.bodySize { return true }
            if !content.discard, fragment.len > 0, let bytes = fragment.bytes, content.delivery != nil {
                content.delivery!.body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: fragment.len))
            }
            return false
        }
        if tooMuch == true {
            fail(AMQPError(kind: .library, text: "protocol error: more body than the content header announced"))
            return
        }
        finishContentIfComplete()
    }

    private func finishContentIfComplete() {
        guard incoming?.complete == true, var content = incoming.take() else { return }
        if var delivery = content.delivery.take() {
            delivery.bodySize = content.bodySize
            delivery.bodyDiscarded = content.discard
            dispatch(delivery)
        } else if let r = content.returned {
            markReturned(exchange: r.exchange, routingKey: r.routingKey, messageId: r.messageId, error: r.error)
        }
    }
}

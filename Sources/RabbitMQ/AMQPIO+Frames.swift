import CRabbitMQ
import Glibc

extension AMQPIO {
    /// One frame from the broker: a method, or a content header or body frame
    /// of the delivery (or returned message) being read.
    func handle(_ frame: amqp_frame_t) {
        switch frame.frame_type {
        case UInt8(AMQP_FRAME_METHOD): handleMethod(frame)
        case UInt8(AMQP_FRAME_HEADER): contentHeader(frame)
        case UInt8(AMQP_FRAME_BODY): contentBody(frame)
        default: break  // heartbeats are handled inside librabbitmq
        }
    }

    private func handleMethod(_ frame: amqp_frame_t) {
        let method = frame.payload.method
        if incoming != nil {
            fail(AMQPError(kind: .library, text: "protocol error: a method frame arrived inside a message's content"))
            return
        }
        switch method.id {
        case Method.basicDeliver:
            let d = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            acks.delivered(d.delivery_tag)
            incoming = IncomingContent(delivery: AMQPDelivery(
                body: [], properties: AMQPProperties(), deliveryTag: d.delivery_tag, redelivered: d.redelivered != 0,
                exchange: d.exchange.swiftString, routingKey: reused(d.routing_key, &lastRoutingKey),
                consumerTag: reused(d.consumer_tag, &lastConsumerTag), channelIncarnation: connection.incarnation),
                maxBodyBytes: options.maxBodyBytes)
        case Method.basicAck:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false)
        case Method.basicNack:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true)
        case Method.basicReturn:
            let ret = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let error = AMQPError(kind: .returned, replyCode: ret.reply_code,
                                  text: "message to exchange '\(ret.exchange.swiftString)' with routing key '\(ret.routing_key.swiftString)' was returned: \(ret.reply_text.swiftString)")
            // Its header and body frames follow; only the message id is kept (to match the publish).
            incoming = IncomingContent(returned: .init(exchange: ret.exchange.swiftString, routingKey: ret.routing_key.swiftString, error: error))
        case Method.channelClose:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            var ok = amqp_channel_close_ok_t()
            _ = amqp_send_method(state, frame.channel, Method.channelCloseOk, &ok)
            fail(AMQPError(kind: .channelClosed, replyCode: close.reply_code, text: close.reply_text.swiftString))
        case Method.connectionClose:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var ok = amqp_connection_close_ok_t()
            _ = amqp_send_method(state, 0, Method.connectionCloseOk, &ok)
            fail(AMQPError(kind: .connectionClosed, replyCode: close.reply_code, text: close.reply_text.swiftString))
        case Method.basicCancel:
            // The broker cancelled a consumer (its queue was deleted, ...).
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = cancel.consumer_tag.swiftString
            if let consumer = consumers.removeValue(forKey: tag) {
                consumer.finish(AMQPError(kind: .consumerCancelled, text: "the broker cancelled consumer \(tag)"))
            }
        case Method.connectionBlocked:
            let blocked = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            connection.setBlocked(true)
            options.onBlocked?(true, blocked.reason.swiftString)
        case Method.connectionUnblocked:
            connection.setBlocked(false)
            options.onBlocked?(false, "")
        default:
            logger.debug("ignoring amqp method", metadata: ["method": "\(method.id)"])
        }
    }

    /// Resolves publisher confirms. Sequence numbers are increasing, so
    /// `pending` is sorted and a `multiple` confirm takes a prefix.
    private func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) {
        var resolved: [PendingPublish] = []
        if multiple {
            let count = pending.prefix(while: { $0.seq <= tag }).count
            resolved = Array(pending.prefix(count))
            pending.removeFirst(count)
        } else if let index = pending.firstIndex(where: { $0.seq == tag }) {
            resolved = [pending.remove(at: index)]
        }
        for p in resolved {
            if nacked {
                p.continuation.resume(throwing: AMQPError(kind: .nacked, text: "the broker nacked the publish"))
            } else if let returned = p.returned {
                p.continuation.resume(throwing: returned)
            } else {
                p.continuation.resume()
            }
        }
    }

    /// A `basic.return` comes before the confirm of the same message. We find
    /// the publish by exchange, routing key and message id together (never by
    /// guessing from a different destination); identical publishes are
    /// interchangeable, so the oldest match is taken.
    func markReturned(exchange: String, routingKey: String, messageId: String?, error: AMQPError) {
        if let index = pending.firstIndex(where: {
            $0.mandatory && $0.returned == nil && $0.exchange == exchange && $0.routingKey == routingKey && $0.messageId == messageId
        }) {
            pending[index].returned = error
        }
    }
}

extension AMQPIO {
    /// The consumer tag and the routing key are the same on delivery after
    /// delivery: the String made for the previous one is handed out again when
    /// the bytes are equal (two allocations a delivery saved; a tag is 31 bytes,
    /// over Swift's 15-byte inline strings).
    func reused(_ bytes: amqp_bytes_t, _ last: inout String) -> String {
        // memcmp, not `elementsEqual`: the generic one walked the bytes one index at a
        // time and cost more than the allocation it saved.
        if bytes.len == last.utf8.count,
           bytes.len == 0 || last.withUTF8({ memcmp($0.baseAddress!, bytes.bytes, bytes.len) == 0 }) {
            return last
        }
        last = bytes.swiftString
        return last
    }
}

import CRabbitMQ
import Glibc

// Publishing. On a plain TCP connection the three or more frames of a publish
// are encoded by librabbitmq's own encoders into one buffer (`dari_encode_publish`
// in shim.h: the bytes amqp_basic_publish writes) and leave with one send(2);
// amqp_basic_publish makes one send(2) per frame (method and header with
// MSG_MORE). Within a corked pass (AMQPIO+Cork.swift) those calls no longer
// transmit, but each still cost a system call and a pass through the TCP
// send path: two thirds of them are saved here. Over TLS the library's
// function stays (its socket's SSL state is not ours to write through).
//
// The socket is the library's own (non-blocking): a send that does not take
// everything waits in poll() for room, without a deadline, as
// amqp_basic_publish does. librabbitmq does not see these sends in its
// heartbeat bookkeeping, so it sends its heartbeat every heartbeat/2 while we
// publish: a few bytes, and the broker takes them.

extension AMQPIO {
    func publish(exchange: String, routingKey: String, body: [UInt8], properties: AMQPProperties, mandatory: Bool,
                 id: UInt64, continuation: CheckedContinuation<Void, Error>) {
        if let failure {
            continuation.resume(throwing: failure)
            return
        }
        // librabbitmq writes the method frame before it encodes the content
        // header: a property it cannot encode (a short string over 255 bytes,
        // e.g. a message's invalid-UTF-8 correlation_id turned into replacement
        // characters) failed *after* a frame went out, so the broker closed the
        // connection; the outcome was retried on every new connection, forever.
        // Checked here first, and only this publish fails.
        if let problem = properties.encodingProblem(frameMax: Int(amqp_get_frame_max(state)))
            ?? AMQPProperties.shortStringProblem(exchange, "exchange") ?? AMQPProperties.shortStringProblem(routingKey, "routing key") {
            continuation.resume(throwing: AMQPError(kind: .unencodable, text: "basic.publish: \(problem)"))
            return
        }
        let arena = CArena()
        var props = arena.properties(properties)
        let status: Int32
        if let fd = plainSocket {
            status = sendPublish(fd: fd, exchange: arena.bytes(exchange), routingKey: arena.bytes(routingKey),
                                 mandatory: mandatory, properties: &props, body: body)
        } else {
            status = body.withUnsafeBytes { raw in
                amqp_basic_publish(state, channel, arena.bytes(exchange), arena.bytes(routingKey),
                                   mandatory ? 1 : 0, 0, &props,
                                   amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress)))
            }
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            let e = AMQPError.library(status, "basic.publish")
            fail(e)
            continuation.resume(throwing: e)
            return
        }
        pending.append(PendingPublish(seq: nextPublishSeq, id: id, continuation: continuation, exchange: exchange,
                                      routingKey: routingKey, messageId: properties.messageId, mandatory: mandatory))
        nextPublishSeq += 1
    }

    /// Encodes and sends one publish on a plain TCP socket; an amqp_status_enum.
    private func sendPublish(fd: Int32, exchange: amqp_bytes_t, routingKey: amqp_bytes_t, mandatory: Bool,
                             properties: inout amqp_basic_properties_t, body: [UInt8]) -> Int32 {
        let frameMax = Int(amqp_get_frame_max(state))
        let bodyFrames = (body.count / max(1, frameMax - 8) + 1) * 8
        // First with room for a small content header (an outcome's is ~80 bytes), then
        // once more with room for the largest (frame_max) if the first try failed in
        // any way: librabbitmq's encoders answer TABLE_TOO_BIG or BAD_AMQP_DATA, not
        // NO_MEMORY, when the properties do not fit the room they are given (a second
        // reader found it: a deferred message with 5 KB of headers failed the publish
        // and so the connection, on every connection, since each starts small).
        func encode(headerRoom: Int) -> Int {
            let needed = headerRoom + body.count + bodyFrames
            if (publishBuffer?.count ?? 0) < needed {
                publishBuffer?.deallocate()
                publishBuffer = .allocate(byteCount: needed, alignment: 16)
            }
            let out = publishBuffer!
            return body.withUnsafeBytes { raw in
                dari_encode_publish(out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count, channel,
                                    exchange, routingKey, mandatory ? 1 : 0, &properties,
                                    raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count, frameMax)
            }
        }
        var length = encode(headerRoom: 4096)
        if length < 0 { length = encode(headerRoom: 1024 + frameMax) }
        let status: Int32
        if length < 0 {
            status = Int32(truncatingIfNeeded: length)
        } else {
            status = Self.sendAll(fd, UnsafeRawBufferPointer(rebasing: publishBuffer![0..<length]))
                ? AMQP_STATUS_OK.rawValue : AMQP_STATUS_SOCKET_ERROR.rawValue
        }
        // A large publish must not keep its buffer for the life of the connection.
        if let out = publishBuffer, out.count > 4 * (1024 + frameMax) {
            out.deallocate()
            publishBuffer = nil
        }
        return status
    }

    /// Writes all of `bytes`, waiting for room when the socket is full; false on an error.
    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n > 0 {
                offset += n
                continue
            }
            let code = errno
            if n < 0 && code == EINTR { continue }
            guard n < 0 && (code == EAGAIN || code == EWOULDBLOCK) else { return false }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&p, 1, -1) < 0 && errno != EINTR { return false }
        }
        return true
    }
}

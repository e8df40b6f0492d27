import CRabbitMQ
import Glibc
import Logging

/// The state that only the connection thread touches: the librabbitmq
/// connection, pending publisher confirms and where the consumers' deliveries go.
final class AMQPIO {
    let connection: AMQPConnection
    let options: AMQPConnection.Options
    let channel: amqp_channel_t = 1
    var state: amqp_connection_state_t?
    /// Set once the connection has failed or was closed; every later operation fails with it.
    var failure: AMQPError?
    var closeRequested = false

    struct PendingPublish {
        let seq: UInt64
        /// Identifies the publish to its caller, who may abandon it (cancellation).
        let id: UInt64
        let continuation: CheckedContinuation<Void, Error>
        let exchange: String
        let routingKey: String
        let messageId: String?
        let mandatory: Bool
        var returned: AMQPError?
    }
    var nextPublishSeq: UInt64 = 1
    var pending: [PendingPublish] = []
    var consumers: [String: any AMQPConsumerDestination] = [:]
    /// Whether `checkChannel` (passive declares of `queueCounts`) is open.
    var checkChannelOpen = false
    /// Unsettled delivery tags and the acks asked for in this pass (AMQPIO+Acks.swift).
    var acks = AckCoalescer()
    /// `basic.ack` frames written (a test reads it to see acks coalesce).
    var ackFramesSent = 0
    /// The content (delivery or returned message) whose header and body frames are being read.
    var incoming: IncomingContent?
    /// The socket of a plain TCP connection, written directly by `publish`
    /// (AMQPIO+Publish.swift); nil over TLS.
    var plainSocket: Int32?
    /// Where `publish` encodes a publish's frames: reused, never zero-filled (only
    /// the pages a publish writes become resident), freed with the connection.
    var publishBuffer: UnsafeMutableRawBufferPointer?
    /// The previous delivery's routing key and consumer tag (`reused`, AMQPIO+Frames.swift).
    var lastRoutingKey = ""
    var lastConsumerTag = ""
    /// The socket is corked for this pass of commands (AMQPIO+Cork.swift).
    var corked = false
    /// Set once setting TCP_CORK failed: logged once, then ignored.
    var corkFailed = false

    init(connection: AMQPConnection, options: AMQPConnection.Options) {
        self.connection = connection
        self.options = options
    }

    deinit {
        publishBuffer?.deallocate()
    }

    var logger: Logger { connection.logger }

    // MARK: - Thread main loop

    func run(started: CheckedContinuation<Void, Error>) {
        do {
            try open()
            started.resume()
        } catch {
            let e = error as? AMQPError ?? AMQPError(kind: .connect, text: "\(error)")
            failure = e
            destroy()
            for leftover in connection.finish(with: e) { leftover(self) }
            started.resume(throwing: e)
            return
        }
        let sockfd = amqp_get_sockfd(state)
        let heartbeat = amqp_get_heartbeat(state)
        let pollTimeout: Int32 = heartbeat > 0 ? max(250, heartbeat * 1000 / 4) : 5000
        var fds = [pollfd(fd: sockfd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: connection.wakeFD, events: Int16(POLLIN), revents: 0)]
        // Two command lists swapped under the lock: neither is ever shared, so
        // emptying one keeps its storage (no allocation per pass).
        var commands: [AMQPConnection.Command] = []
        while failure == nil && !closeRequested {
            connection.shared.withLock { s in swap(&commands, &s.commands) }
            // A pass of several commands leaves as one transmit (AMQPIO+Cork.swift).
            if commands.count > 1 { cork() }
            for command in commands {
                command(self)
            }
            commands.removeAll(keepingCapacity: true)
            // Acks asked for wait while the broker's frames keep the thread busy
            // (so a burst of them leaves as few frames as is correct) and go out
            // before it sleeps, or once 256 are waiting.
            if acks.requestedCount >= 256 { flushAcks() }
            let idle = failure == nil && amqp_frames_enqueued(state) == 0 && amqp_data_in_buffer(state) == 0
            if idle { flushAcks() }
            uncork()
            if failure != nil || closeRequested { break }
            if idle {
                // Sleep only with no command waiting, and say so under the same lock: a
                // command queued from here on writes the eventfd; one queued before is run
                // first (the loop goes round without sleeping).
                let maySleep = connection.shared.withLock { s -> Bool in
                    guard s.commands.isEmpty else { return false }
                    s.sleeping = true
                    return true
                }
                if maySleep {
                    fds[0].revents = 0
                    fds[1].revents = 0
                    let n = poll(&fds, 2, pollTimeout)
                    let pollErrno = errno
                    connection.shared.withLock { $0.sleeping = false }
                    if n < 0 && pollErrno != EINTR {
                        fail(AMQPError(kind: .library, text: "poll failed: errno \(pollErrno)"))
                        break
                    }
                    if fds[1].revents != 0 {
                        var counter: UInt64 = 0
                        _ = withUnsafeMutableBytes(of: &counter) { read(connection.wakeFD, $0.baseAddress, 8) }
                    }
                }
            }
            // Always call into the library, even after a poll timeout: that is
            // where it sends heartbeats and notices a silent broker.
            pump(budget: 512)
        }
        if closeRequested && failure == nil {
            flushAcks()
            closeGracefully()
        }
        let final = failure ?? AMQPError(kind: .closed, text: "connection closed")
        failure = final
        failAll(final)
        destroy()
        for leftover in connection.finish(with: final) { leftover(self) }
    }

    /// Reads whatever the broker has sent, without blocking, up to `budget` frames.
    ///
    /// Frame by frame (`amqp_simple_wait_frame_noblock`), not with
    /// `amqp_consume_message`/`amqp_read_message`: those allocate the whole body
    /// at the announced size before reading it (a 48 MiB message is held whole,
    /// whatever our limit) and clone the properties with `amqp_table_clone`,
    /// which fails on a header with an empty key (AMQP_STATUS_INVALID_PARAMETER)
    /// and so killed the connection on every redelivery of such a message. Here
    /// the properties are copied from the decoded header frame and the body is
    /// gathered (or, over `maxBodyBytes`, dropped) one frame at a time; see
    /// AMQPIO+Content.swift.
    func pump(budget: Int) {
        var remaining = budget
        while remaining > 0 && failure == nil {
            remaining -= 1
            if amqp_frames_enqueued(state) == 0 {
                // Safe only when no frame is queued: queued frames live in the pools.
                // Nothing of an earlier frame is referenced any more: content is copied out.
                // Not waiting for amqp_data_in_buffer == 0: librabbitmq copies every
                // frame into its channel's pool, and under a stream of body frames the
                // socket buffer is never empty, so the pool kept every frame of the
                // burst (16 x 48 MiB: 812-825 MB peak RSS). amqp_maybe_release_buffers
                // itself does nothing unless the decoder is between frames (IDLE), so a
                // frame half read from the buffered bytes is never freed under it.
                amqp_maybe_release_buffers(state)
            }
            var frame = amqp_frame_t()
            var zero = timeval(tv_sec: 0, tv_usec: 0)
            let status = amqp_simple_wait_frame_noblock(state, &frame, &zero)
            if status == AMQP_STATUS_TIMEOUT.rawValue { return }
            guard status == AMQP_STATUS_OK.rawValue else {
                fail(.library(status, "reading from the broker"))
                return
            }
            handle(frame)
        }
    }

    func dispatch(_ delivery: AMQPDelivery) {
        if let consumer = consumers[delivery.consumerTag] {
            consumer.deliver(delivery)
        } else {
            // A delivery for a consumer we already gave up: hand it back.
            reject(delivery.deliveryTag, requeue: true)
        }
    }

    // MARK: - Failure handling

    func fail(_ error: AMQPError) {
        guard failure == nil else { return }
        failure = error
        logger.debug("amqp connection failed", metadata: ["error": "\(error)"])
    }

    private func failAll(_ error: AMQPError) {
        let waiting = pending
        pending = []
        for p in waiting { p.continuation.resume(throwing: error) }
        let streams = consumers
        consumers = [:]
        for (_, c) in streams {
            c.finish(error.kind == .closed ? nil : error)
        }
    }

    private func destroy() {
        guard let s = state else { return }
        amqp_destroy_connection(s)
        state = nil
    }

    func requestClose() {
        closeRequested = true
    }

    private func closeGracefully() {
        // Short: a broker that blocks us (resource alarm) may not read the close.
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        amqp_set_rpc_timeout(state, &timeout)
        _ = amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
    }

    /// Turns a non-normal RPC reply into an error; answers a broker's close
    /// with close-ok so the broker frees its side.
    func error(from reply: amqp_rpc_reply_t, context: String, channel: amqp_channel_t? = nil) -> AMQPError {
        switch reply.reply_type {
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return .library(reply.library_error, context)
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == Method.channelClose, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                var ok = amqp_channel_close_ok_t()
                _ = amqp_send_method(state, channel ?? self.channel, Method.channelCloseOk, &ok)
                return AMQPError(kind: .channelClosed, replyCode: close.reply_code, text: "\(context): \(close.reply_text.swiftString)")
            }
            if reply.reply.id == Method.connectionClose, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                var ok = amqp_connection_close_ok_t()
                _ = amqp_send_method(state, 0, Method.connectionCloseOk, &ok)
                return AMQPError(kind: .connectionClosed, replyCode: close.reply_code, text: "\(context): \(close.reply_text.swiftString)")
            }
            return AMQPError(kind: .library, text: "\(context): unexpected server method \(reply.reply.id)")
        default:
            return AMQPError(kind: .library, text: "\(context): no reply")
        }
    }

    /// Checks the reply of the last synchronous RPC; a failure ends the connection.
    func check(_ context: String, channel: amqp_channel_t? = nil) throws {
        let reply = amqp_get_rpc_reply(state)
        if reply.reply_type == AMQP_RESPONSE_NORMAL { return }
        let e = error(from: reply, context: context, channel: channel)
        fail(e)
        throw e
    }

    /// Every synchronous operation (a request and its reply) starts here: it
    /// fails at once on a failed connection, and takes the cork out so that
    /// the request leaves now instead of when the cork times out (200 ms).
    func beginRPC() throws {
        if let failure { throw failure }
        uncork()
    }
}

import DariBridge
import Logging
import RabbitMQ
import Synchronization

/// The pipeline's broker, on RabbitMQ: keeps one connection alive (reconnects
/// with jittered exponential backoff, re-declares the topology, re-applies
/// qos and consumes again), merges the deliveries of every connection into one
/// stream, publishes on whatever connection is current, and drops acks whose
/// delivery came from a connection that is gone (the broker redelivers those).
public final class RabbitMQBroker: MessageBroker, Sendable {
    struct State {
        var connection: AMQPConnection?
        var consumerTag: String?
        var stopping = false
        var ready = false
        var connects = 0
    }

    let config: Configuration
    let logger: Logger
    let state = Mutex(State())
    public let deliveries: AsyncStream<InboundMessage>
    let continuation: AsyncStream<InboundMessage>.Continuation
    public let droppedAcks = Atomic<Int>(0)
    public let reconnects = Atomic<Int>(0)

    public init(config: Configuration, logger: Logger) {
        self.config = config
        self.logger = logger
        (deliveries, continuation) = AsyncStream<InboundMessage>.makeStream()
    }

    public var isStopping: Bool { state.withLock { $0.stopping } }

    /// Connected, consuming, and the broker is not blocking publishers.
    public var isReady: Bool {
        state.withLock { $0.ready && ($0.connection.map { $0.isOpen && !$0.isBlocked } ?? false) }
    }

    var connectionOptions: AMQPConnection.Options {
        var options = config.amqpOptions
        options.connectionName = "dari-bridge \(DariBridgeVersion.current)"
        let logger = self.logger
        options.onBlocked = { blocked, reason in
            if blocked {
                logger.warning("broker blocked publishing (resource alarm); outcomes wait", metadata: ["reason": "\(reason)"])
            } else {
                logger.info("broker unblocked publishing")
            }
        }
        return options
    }

    /// Runs until `stopConsuming()`: connect, set up, consume; on any loss,
    /// back off and do it again. Never throws: an unreachable broker is not a
    /// configuration error.
    public func run() async {
        var delay = Duration.milliseconds(config.reconnectInitialMs)
        var outage = false
        while !isStopping && !Task.isCancelled {
            var connection: AMQPConnection? = nil
            // Configuration.load never leaves the list empty; a hand-made
            // Configuration might. (The multi-node order comes later.)
            let url = config.amqpURLs.isEmpty ? AMQPURL.default : config.amqpURLs[0]
            do {
                let conn = try await AMQPConnection.connect(to: url, options: connectionOptions, logger: logger)
                connection = conn
                try await conn.declareExchange(config.resultsExchange, type: "topic", durable: true)
                try await conn.qos(prefetchCount: UInt16(config.concurrency))
                let first = state.withLock { s in
                    s.connection = conn
                    s.connects += 1
                    return s.connects == 1
                }
                if !first { reconnects.add(1, ordering: .relaxed) }
                logger.info(outage || !first ? "reconnected to the broker" : "connected to the broker",
                            metadata: ["broker": "\(url)", "queue": "\(config.queue)", "prefetch": "\(config.concurrency)"])
                outage = false
                delay = .milliseconds(config.reconnectInitialMs)
                try await consume(on: conn)
                if isStopping { return }
            } catch {
                if !outage {
                    logger.warning("broker connection lost or refused; reconnecting with backoff", metadata: ["error": "\(error)"])
                    outage = true
                } else {
                    logger.debug("reconnect attempt failed", metadata: ["error": "\(error)"])
                }
            }
            state.withLock { $0.ready = false; $0.consumerTag = nil }
            if let connection { await connection.close() }
            if isStopping { return }
            let jittered = delay * Double.random(in: 0.5...1.0)
            try? await Task.sleep(for: jittered)
            delay = min(delay * 2, .milliseconds(config.reconnectMaxMs))
        }
    }

    /// Declares the queue and consumes; a consumer cancelled by the broker
    /// (queue deleted) is re-declared and consumed again on the same
    /// connection, so unacked deliveries keep their tags.
    private func consume(on conn: AMQPConnection) async throws {
        while true {
            try await conn.declareQueue(config.queue, durable: true)
            // Deliveries go from the IO thread straight into the pipeline's
            // stream: AMQP thread -> pipeline, no relay task in between.
            let deliveries = continuation
            let consumer = try await conn.consume(queue: config.queue) { [weak conn] delivery in
                if case .terminated = deliveries.yield(InboundMessage(delivery)) {
                    // Shutting down: the pipeline takes nothing more. Hand the delivery
                    // back now (another replica can take it) rather than at connection
                    // close, after the drain. Enqueued from the IO thread: no lock held.
                    try? conn?.reject(deliveryTag: delivery.deliveryTag, requeue: true)
                }
            }
            let stopNow = state.withLock { s in
                s.consumerTag = consumer.tag
                s.ready = true
                return s.stopping
            }
            if stopNow { try? await conn.cancel(consumerTag: consumer.tag) }
            do {
                for try await _ in consumer.deliveries {}
                return  // we cancelled it: shutting down
            } catch let error as AMQPError where error.kind == .consumerCancelled && conn.isOpen {
                logger.warning("the broker cancelled our consumer (queue deleted?); declaring and consuming again", metadata: ["error": "\(error)"])
                state.withLock { $0.ready = false }
            }
        }
    }

    /// Stops taking deliveries: cancels the consumer and ends the stream.
    public func stopConsuming() async {
        let (conn, tag) = state.withLock { s in
            s.stopping = true
            return (s.connection, s.consumerTag)
        }
        continuation.finish()  // the pipeline takes nothing more, whatever the broker does
        if let conn, let tag { try? await conn.cancel(consumerTag: tag) }
    }

    /// Closes the connection; acks queued before are written first.
    public func close() async {
        let conn = state.withLock { s in
            s.stopping = true
            s.ready = false
            return s.connection
        }
        continuation.finish()
        await conn?.close()
    }

    public func publish(_ message: OutgoingMessage) async throws(PublishFailure) {
        guard let conn = state.withLock({ $0.connection }), conn.isOpen else {
            throw .transient("not connected to the broker")
        }
        do {
            try await conn.publish(
                exchange: message.exchange, routingKey: message.routingKey, body: message.body,
                properties: AMQPProperties(contentType: message.contentType, messageId: message.messageId,
                                           correlationId: message.correlationId, persistent: message.persistent),
                mandatory: message.mandatory)
        } catch let error as AMQPError where error.kind == .returned {
            throw .unroutable(error.text)
        } catch {
            throw .transient("\(error)")
        }
    }

    /// Delay queues are per delay (rounded up to whole seconds): a message TTL
    /// and a dead-letter route back to the input queue through the default
    /// exchange. They expire when unused for twice their delay plus a minute;
    /// publishing does not count as use for `x-expires`, so the queue is
    /// declared again before every hand-off (which renews the lease, and
    /// re-creates a queue that expired or was deleted).
    public func deferMessage(_ message: InboundMessage, attempts: Int, delay: Duration) async throws(PublishFailure) {
        guard let conn = state.withLock({ $0.connection }), conn.isOpen else {
            throw .transient("not connected to the broker")
        }
        let seconds = max(1, Int((delay + .milliseconds(999)).components.seconds))
        let name = "\(config.queue).delay.\(seconds)s"
        var headers = message.headers
        headers[attemptsHeader] = "\(attempts)"
        do {
            let ttl = Int64(seconds) * 1000
            try await conn.declareQueue(name, durable: true, arguments: [
                "x-message-ttl": .int(ttl),
                "x-dead-letter-exchange": .string(""),
                "x-dead-letter-routing-key": .string(config.queue),
                "x-expires": .int(ttl * 2 + 60_000),
            ])
            try await conn.publish(
                exchange: "", routingKey: name, body: message.body,
                properties: AMQPProperties(contentType: "application/json", messageId: message.messageId,
                                           correlationId: message.correlationId, replyTo: message.replyTo,
                                           persistent: true, headers: headers),
                mandatory: true)
        } catch {
            throw .transient("\(error)")
        }
    }

    public func ack(_ token: DeliveryToken) async {
        let conn = state.withLock { $0.connection }
        guard let conn, conn.incarnation == token.incarnation, (try? conn.ack(deliveryTag: token.tag)) != nil else {
            droppedAcks.add(1, ordering: .relaxed)
            logger.debug("ack dropped: its channel is gone; the broker will redeliver", metadata: ["tag": "\(token.tag)"])
            return
        }
    }
}

extension InboundMessage {
    init(_ d: AMQPDelivery) {
        self.init(body: d.body, messageId: d.properties.messageId, correlationId: d.properties.correlationId,
                  replyTo: d.properties.replyTo, headers: d.properties.headers, redelivered: d.redelivered,
                  token: DeliveryToken(tag: d.deliveryTag, incarnation: d.channelIncarnation))
    }
}

import DariBridge
import Logging
import RabbitMQ
import Synchronization

/// The pipeline's broker, on RabbitMQ: keeps one connection alive to one of
/// the configured nodes (each connect tries them in a random order; after all
/// failed, jittered exponential backoff), checks or declares the topology,
/// applies qos and consumes. Deliveries of every connection go into one
/// stream; acks whose delivery came from a connection that is gone are dropped
/// (the broker redelivers those messages).
public final class RabbitMQBroker: MessageBroker, Sendable {
    struct State {
        var connection: AMQPConnection?
        var consumerTag: String?
        var stopping = false
        var ready = false
        var connects = 0
        /// host:port of the node connected to (no credentials).
        var node: String?
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

    /// `host:port` of the node the worker is connected to, nil when not connected.
    public var connectedNode: String? {
        state.withLock { s in s.connection?.isOpen == true ? s.node : nil }
    }

    var connectionOptions: AMQPConnection.Options {
        var options = config.amqpOptions
        options.connectionName = "dari-bridge \(DariBridgeVersion.current)"
        // Larger bodies are dropped while read (invalid_message), never held.
        options.maxBodyBytes = config.maxMessageBytes
        let logger = self.logger
        options.onBlocked = { blocked, reason in
            if blocked {
                logger.warning("broker blocked publishing (resource alarm); outcomes wait", metadata: ["reason": "\(LogSafe.text(reason))"])
            } else {
                logger.info("broker unblocked publishing")
            }
        }
        return options
    }

    /// Runs until `stopConsuming()`: connect, set up, consume; on any loss,
    /// connect again (at once to another node when the node shut down, else
    /// after a backoff once every node failed). Never throws: an unreachable
    /// broker is not a configuration error.
    public func run() async {
        var delay = Duration.milliseconds(config.reconnectInitialMs)
        var outage = false
        var avoid: String? = nil
        while !isStopping && !Task.isCancelled {
            var connection: AMQPConnection? = nil
            var lostError: (any Error)? = nil
            do {
                let (conn, url) = try await connectToSomeNode(avoiding: avoid)
                connection = conn
                let ready = try await ensureTopology(on: conn, url: url)
                connection = ready
                try await ready.qos(prefetchCount: UInt16(clamping: config.effectivePrefetch))
                let first = state.withLock { s in
                    s.connection = ready
                    s.node = "\(url.host):\(url.port)"
                    s.connects += 1
                    return s.connects == 1
                }
                if !first { reconnects.add(1, ordering: .relaxed) }
                logger.info(outage || !first ? "reconnected to the broker" : "connected to the broker",
                            metadata: ["node": "\(url)", "queue": "\(config.queue)", "prefetch": "\(config.effectivePrefetch)"])
                outage = false
                delay = .milliseconds(config.reconnectInitialMs)
                try await consume(on: ready)
                if isStopping { return }
            } catch let error as AMQPError where error.kind == .consumerCancelled {
                lostError = error
                logger.warning("the broker cancelled our consumer (queue deleted, or its node went away); checking the queue and consuming again",
                               metadata: ["error": "\(LogSafe.text("\(error)"))"])
            } catch {
                lostError = error
                if !outage {
                    logger.warning("broker connection lost or refused; reconnecting", metadata: ["error": "\(LogSafe.text("\(error)"))"])
                    outage = true
                } else {
                    logger.debug("reconnect attempt failed", metadata: ["error": "\(LogSafe.text("\(error)"))"])
                }
            }
            let lostNode = state.withLock { s -> String? in
                s.ready = false
                s.consumerTag = nil
                return s.node
            }
            if let connection { await connection.close() }
            if isStopping { return }
            // A node that shuts down says so (connection.close 320): go to another one at once.
            if let e = lostError as? AMQPError, e.kind == .connectionClosed, e.replyCode == 320, config.amqpURLs.count > 1 {
                avoid = lostNode
                continue
            }
            avoid = nil
            let jittered = delay * Double.random(in: 0.5...1.0)
            try? await Task.sleep(for: jittered)
            delay = min(delay * 2, .milliseconds(config.reconnectMaxMs))
        }
    }

    /// Tries every node once, in a random order (a node to avoid goes last).
    private func connectToSomeNode(avoiding avoid: String?) async throws -> (AMQPConnection, AMQPURL) {
        var order = config.amqpURLs.shuffled()
        if let avoid, let i = order.firstIndex(where: { "\($0.host):\($0.port)" == avoid }) {
            order.append(order.remove(at: i))
        }
        var lastError: (any Error)? = nil
        for url in order {
            if isStopping { break }
            do {
                return (try await AMQPConnection.connect(to: url, options: connectionOptions, logger: logger), url)
            } catch {
                lastError = error
                logger.debug("node refused or unreachable; trying the next", metadata: ["node": "\(url)", "error": "\(LogSafe.text("\(error)"))"])
            }
        }
        throw lastError ?? AMQPError(kind: .connect, text: "stopping")
    }

    /// Consumes until the consumer or the connection ends. A consumer the
    /// broker cancelled (queue deleted, node of the queue gone) ends this
    /// connection too: the next one checks or declares the queue again.
    private func consume(on conn: AMQPConnection) async throws {
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
        for try await _ in consumer.deliveries {}
        // The stream ended without error: we cancelled it (shutting down).
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
}

import DariBridge
import Logging
import RabbitMQ
import ServiceLifecycle
import Synchronization

/// The pipeline's broker, on RabbitMQ: keeps one connection alive to one of
/// the configured nodes (each connect tries them in a random order; after all
/// failed, jittered exponential backoff), checks or declares the topology,
/// applies qos and consumes. Deliveries of every connection go into one
/// stream; acks whose delivery came from a connection that is gone are dropped
/// (the broker redelivers those messages). A watchdog notices a consumer the
/// broker stopped feeding (RabbitMQBroker+Watchdog.swift).
///
/// A `Service`, as postgres-nio's `PostgresClient` is: `run()` owns the
/// connection for its whole life.
package final class RabbitMQBroker: MessageBroker, Service, Sendable {
    struct State {
        var connection: AMQPConnection?
        var consumerTag: String?
        /// What the current connection's consumers received and settled.
        var activity: ConsumerActivity?
        var stopping = false
        var ready = false
        var connects = 0
        /// host:port of the node connected to (no credentials).
        var node: String?
    }

    let config: Configuration
    let logger: Logger
    let state = Mutex(State())
    /// The deliveries of every connection, in order, for the pipeline.
    package let deliveries = InboundChannel()
    package let droppedAcks = Atomic<Int>(0)
    package let reconnects = Atomic<Int>(0)
    /// Consumer stalls the watchdog detected (each followed by consuming again).
    package let stalls = Atomic<Int>(0)
    /// Fired once: stop consuming (graceful shutdown, `stopConsuming`, `close`).
    let stopRequested = OneShot<Void>()
    /// Fired once: close the connection (cancellation of `run`, `close`).
    let closeRequested = OneShot<Void>()
    let metrics: BrokerMetrics

    package init(config: Configuration, logger: Logger, metrics: BrokerMetrics = BrokerMetrics()) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
    }

    package var isStopping: Bool { state.withLock { $0.stopping } }

    /// Connected, consuming, deliveries not stalled (see the watchdog), and the
    /// broker is not blocking publishers.
    package var isReady: Bool {
        state.withLock { s in
            s.ready && !(s.activity?.stalled.load(ordering: .relaxed) ?? false)
                && (s.connection.map { $0.isOpen && !$0.isBlocked } ?? false)
        }
    }

    /// `host:port` of the node the worker is connected to, nil when not connected.
    package var connectedNode: String? {
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

    /// Owns the connection: connects, sets up, consumes and reconnects
    /// (`superviseConnections`). At graceful shutdown it stops consuming (the
    /// consumer is cancelled, the delivery stream ends, a delivery that still
    /// arrives goes back to the queue) but keeps the connection, so the
    /// messages being drained can still publish their outcomes and be acked.
    /// Returns once the task is cancelled or `close()` is called (WorkerService
    /// cancels it when the drain is over), with the connection closed. Never
    /// throws: an unreachable broker is not a configuration error.
    package func run() async {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await superviseConnections()
                _ = await closeRequested.wait()
            } onGracefulShutdown: { [self] in
                beginStopping()
            }
        } onCancel: { [self] in
            beginStopping()
            closeRequested.fire()
        }
        await close()
    }

    /// Until stopping: connect, set up, consume; on any loss, connect again (at
    /// once to another node when the node shut down, else after a backoff once
    /// every node failed).
    func superviseConnections() async {
        var delay = Duration.milliseconds(config.reconnectInitialMs)
        var outage = false
        var avoid: String? = nil
        // Failovers without a pause since the last connection that got to consume:
        // bounded, so nodes that close every connection at once cannot make us spin.
        var quickFailovers = 0
        while !isStopping && !Task.isCancelled {
            var connection: AMQPConnection? = nil
            var lostError: (any Error)? = nil
            var node: String? = nil
            do {
                let (conn, url) = try await connectToSomeNode(avoiding: avoid)
                connection = conn
                node = "\(url.host):\(url.port)"
                let ready = try await ensureTopology(on: conn, url: url)
                connection = ready
                try await ready.qos(prefetchCount: UInt16(clamping: config.effectivePrefetch))
                let (first, activity) = state.withLock { s in
                    s.connection = ready
                    // A stall seen on the last connection stays reported until deliveries flow.
                    s.activity = ConsumerActivity(stalled: s.activity?.stalled.load(ordering: .relaxed) ?? false)
                    s.node = "\(url.host):\(url.port)"
                    s.connects += 1
                    return (s.connects == 1, s.activity!)
                }
                if !first {
                    reconnects.add(1, ordering: .relaxed)
                    metrics.reconnects.increment()
                }
                logger.info(outage || !first ? "reconnected to the broker" : "connected to the broker",
                            metadata: ["node": "\(url)", "queue": "\(config.queue)", "prefetch": "\(config.effectivePrefetch)"])
                outage = false
                quickFailovers = 0
                delay = .milliseconds(config.reconnectInitialMs)
                try await consume(on: ready, activity: activity)
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
            state.withLock { s in
                s.ready = false
                s.consumerTag = nil
            }
            if let connection { await connection.close() }
            if isStopping { return }
            // A node that shuts down says so (connection.close 320): go to another one
            // at once (that node last), also when it happens while setting up.
            if let e = lostError as? AMQPError, e.kind == .connectionClosed, e.replyCode == 320,
               config.amqpURLs.count > 1, quickFailovers < config.amqpURLs.count {
                quickFailovers += 1
                avoid = node
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

    /// What ended one consumer's watch.
    enum ConsumerEvent: Sendable {
        case ended(AMQPError?)
        case stopRequested
        case stalled
        /// A watch that ended without news (cancelled, or a failed check whose
        /// failure ends the connection: the consumer's end follows).
        case nothing
    }

    /// Consumes on `conn` until stopping (returns, the connection kept for the
    /// drain) or until the consumer or the connection ends (throws why). A
    /// consumer the broker cancelled (queue deleted, node of the queue gone)
    /// ends this connection too: the next one checks or declares the queue
    /// again. A stalled consumer (the watchdog) is cancelled and started again
    /// on this connection; when the cancel fails the connection has failed,
    /// and the caller reconnects.
    private func consume(on conn: AMQPConnection, activity: ConsumerActivity) async throws {
        while true {
            let ended = OneShot<ConsumerEnded>()
            let feed = PipelineFeed(pipeline: deliveries, connection: conn, activity: activity, ended: ended, logger: logger)
            let tag = try await conn.consume(queue: config.queue, into: feed)
            state.withLock { s in
                s.consumerTag = tag
                s.ready = true
            }
            let stallTimeout = config.stallTimeoutMs > 0 ? Duration.milliseconds(config.stallTimeoutMs) : nil
            let end: AMQPError? = await withTaskGroup(of: ConsumerEvent.self) { group in
                group.addTask { await ended.wait().map { .ended($0.error) } ?? .nothing }
                group.addTask { await self.stopRequested.wait() == nil ? .nothing : .stopRequested }
                if let stallTimeout {
                    group.addTask { await self.watchForStall(on: conn, activity: activity, timeout: stallTimeout) ? .stalled : .nothing }
                }
                var result: AMQPError? = nil
                for await event in group {
                    switch event {
                    case .ended(let error):
                        result = error
                        group.cancelAll()
                    case .stopRequested, .stalled:
                        // The consumer then ends (`.ended`): cleanly after cancel-ok, or
                        // with the connection's error when the cancel failed (2 s at most).
                        try? await conn.cancel(consumerTag: tag)
                    case .nothing:
                        break
                    }
                }
                return result
            }
            if let end { throw end }
            if isStopping || Task.isCancelled { return }
            // Cancelled for a stall: consume again on this connection.
        }
    }

    /// Stops taking deliveries: the pipeline's channel ends at once, whatever the
    /// broker does, and the consumer is cancelled (by `consume(on:)`).
    func beginStopping() {
        state.withLock { $0.stopping = true }
        deliveries.finish()
        stopRequested.fire()
    }

    /// Stops taking deliveries: ends the channel and cancels the consumer.
    package func stopConsuming() async {
        beginStopping()
        let (conn, tag) = state.withLock { s in (s.connection, s.consumerTag) }
        if let conn, let tag { try? await conn.cancel(consumerTag: tag) }
    }

    /// Closes the connection (acks queued before are written first) and ends
    /// `run()`.
    package func close() async {
        beginStopping()
        closeRequested.fire()
        let conn = state.withLock { s in
            s.ready = false
            return s.connection
        }
        await conn?.close()
    }
}

import CRabbitMQ
import Glibc
import Logging
import Synchronization

/// One AMQP connection with one channel (channel 1, in confirm mode), owned by
/// one dedicated OS thread.
///
/// librabbitmq has no locking and services heartbeats only while its owner is
/// inside a library call, so every call happens on the thread started here.
/// Other threads queue commands (publish, ack, declare, close) in a
/// mutex-protected list and wake the thread through an eventfd; the thread
/// sleeps in `poll()` on the socket and that eventfd, so an idle connection
/// costs no CPU beyond one wake-up per heartbeat/4.
///
/// Any channel or connection error ends the whole object (the channel is not
/// reopened in place): the owner builds a new connection, which keeps delivery
/// tags simple, since tags of a dead connection can never be acked by accident.
package final class AMQPConnection: Sendable {
    package struct Options: Sendable {
        /// A URL's `?heartbeat=` wins over this.
        package var heartbeatSeconds: Int32 = 10
        /// TCP connect and TLS handshake, each; a URL's `?connection_timeout=` wins.
        package var connectTimeoutSeconds: Int = 10
        /// For `amqps://` URLs; a URL's `cacertfile`, `certfile`/`keyfile`, `verify` win.
        package var tls = AMQPTLSOptions()
        package var rpcTimeoutSeconds: Int = 30
        package var connectionName: String = "dari-bridge"
        /// A delivery whose body is larger is read off the socket and dropped
        /// frame by frame, never held (`AMQPDelivery.bodyDiscarded`).
        package var maxBodyBytes: Int = 128 << 20
        /// Called on the connection thread when the broker blocks / unblocks publishing.
        package var onBlocked: (@Sendable (_ blocked: Bool, _ reason: String) -> Void)? = nil
        package init() {}
    }

    typealias Command = @Sendable (AMQPIO) -> Void

    struct Shared {
        var commands: [Command] = []
        /// The connection thread is in (or about to enter) `poll()` with no command left:
        /// the next command must wake it. Otherwise it will look at the commands before it
        /// sleeps, and the eventfd write (a system call per command) is saved.
        var sleeping = false
        var closed: AMQPError? = nil
        var closeWaiters: [CheckedContinuation<AMQPError?, Never>] = []
        var finished = false
        var blocked = false
        /// The heartbeat the broker and we agreed on at login (seconds).
        var heartbeat: Int32 = 0
    }

    private static let incarnations = Atomic<UInt64>(0)

    /// Distinguishes this connection (and so its only channel) from every other
    /// one in the process; deliveries carry it.
    package let incarnation: UInt64
    package let url: AMQPURL
    let shared = Mutex(Shared())
    let wakeFD: Int32
    let logger: Logger

    private init(url: AMQPURL, logger: Logger) {
        self.url = url
        self.logger = logger
        self.incarnation = Self.incarnations.add(1, ordering: .relaxed).newValue
        self.wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
    }

    deinit {
        Glibc.close(wakeFD)
    }

    /// Opens the TCP (or TLS) connection, logs in, opens channel 1 and puts it
    /// in confirm mode, all on the connection's own thread.
    package static func connect(to url: AMQPURL, options: Options = Options(), logger: Logger = Logger(label: "amqp")) async throws -> AMQPConnection {
        let connection = AMQPConnection(url: url, logger: logger)
        guard connection.wakeFD >= 0 else {
            throw AMQPError(kind: .connect, text: "eventfd failed: errno \(errno)")
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let io = AMQPIO(connection: connection, options: options)
            let box = ThreadStart(io: io, started: continuation)
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            // librabbitmq decodes a content header's table recursively inside
            // amqp_handle_input (96 bytes of stack per nested array, 112 per
            // nested table, 0.11). RabbitMQ delivers any depth that fits in one
            // frame: at frame_max 131072 (our login) that is ~26,000 arrays,
            // ~2.5 MB of stack; 1 MiB overflowed (SIGSEGV) at ~10,800 levels.
            // 4 MiB is address space: only the pages a decode touches get resident.
            pthread_attr_setstacksize(&attributes, 4 << 20)
            var thread = pthread_t()
            let rc = pthread_create(&thread, &attributes, amqpThreadEntry, Unmanaged.passRetained(box).toOpaque())
            pthread_attr_destroy(&attributes)
            if rc != 0 {
                Unmanaged.passUnretained(box).release()
                continuation.resume(throwing: AMQPError(kind: .connect, text: "pthread_create failed: \(rc)"))
            } else {
                pthread_detach(thread)
            }
        }
        return connection
    }

    /// Queues a command for the connection thread. Returns the error the
    /// connection ended with, if it already did (the command then does not run).
    @discardableResult
    func enqueue(_ command: @escaping Command) -> AMQPError? {
        let (refused, mustWake): (AMQPError?, Bool) = shared.withLock { s in
            if let closed = s.closed { return (closed, false) }
            s.commands.append(command)
            let sleeping = s.sleeping
            s.sleeping = false  // one wake-up per sleep
            return (nil, sleeping)
        }
        if mustWake { wake() }
        return refused
    }

    func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(wakeFD, $0.baseAddress, 8) }
    }

    /// Runs `body` on the connection thread and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable (AMQPIO) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let refused = enqueue { io in
                continuation.resume(with: Result { try body(io) })
            }
            if let refused { continuation.resume(throwing: refused) }
        }
    }

    /// Whether the connection is still open.
    package var isOpen: Bool { shared.withLock { $0.closed == nil } }

    /// The heartbeat interval negotiated at login, in seconds (0 = off).
    package var negotiatedHeartbeatSeconds: Int { Int(shared.withLock { $0.heartbeat }) }

    /// Whether the broker has blocked publishing (memory or disk alarm).
    package var isBlocked: Bool { shared.withLock { $0.blocked } }

    /// Waits until the connection has ended; returns the error it ended with
    /// (`nil` after a clean `close()`).
    package func closed() async -> AMQPError? {
        await withCheckedContinuation { (continuation: CheckedContinuation<AMQPError?, Never>) in
            let done: (Bool, AMQPError?) = shared.withLock { s in
                if s.finished { return (true, s.closed) }
                s.closeWaiters.append(continuation)
                return (false, nil)
            }
            if done.0 { continuation.resume(returning: done.1?.kind == .closed ? nil : done.1) }
        }
    }

    // MARK: - Topology

    @discardableResult
    package func declareQueue(_ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false, arguments: [String: AMQPArgument] = [:]) async throws -> (name: String, messageCount: UInt32, consumerCount: UInt32) {
        try await perform { io in try io.declareQueue(name, durable: durable, exclusive: exclusive, autoDelete: autoDelete, arguments: arguments) }
    }

    package func declareExchange(_ name: String, type: String = "topic", durable: Bool = true) async throws {
        try await perform { io in try io.declareExchange(name, type: type, durable: durable) }
    }

    /// A passive `queue.declare`: the queue's counts when it exists, whatever
    /// its type and arguments. A missing queue makes the broker close the
    /// channel (404 NOT_FOUND), which ends this connection: the error has
    /// `replyCode == 404`, and the caller goes on with a new connection.
    @discardableResult
    package func checkQueue(_ name: String) async throws -> (name: String, messageCount: UInt32, consumerCount: UInt32) {
        try await perform { io in try io.declareQueue(name, passive: true, durable: false, exclusive: false, autoDelete: false, arguments: [:]) }
    }

    /// The counts of an existing queue (for a classic or quorum queue the
    /// message count is what is ready, not what consumers hold unacked), from a
    /// passive `queue.declare` on a second channel of this connection, so the
    /// answer comes even when the consumer's channel is stuck. Waits `timeout`
    /// at most (rounded to milliseconds); any failure (a missing queue, no answer in
    /// time) ends the connection, as every failed call does.
    package func queueCounts(_ name: String, timeout: Duration) async throws -> (messageCount: UInt32, consumerCount: UInt32) {
        let ms = max(1, Int(timeout.components.seconds) * 1000 + Int(timeout.components.attoseconds / 1_000_000_000_000_000))
        return try await perform { io in try io.queueCounts(name, timeoutMs: ms) }
    }

    /// A passive `exchange.declare`; a missing exchange ends the connection as in `checkQueue`.
    package func checkExchange(_ name: String) async throws {
        try await perform { io in try io.declareExchange(name, type: "topic", passive: true, durable: false) }
    }

    package func bindQueue(_ queue: String, exchange: String, routingKey: String) async throws {
        try await perform { io in try io.bindQueue(queue, exchange: exchange, routingKey: routingKey) }
    }

    @discardableResult
    package func deleteQueue(_ name: String) async throws -> UInt32 {
        try await perform { io in try io.deleteQueue(name) }
    }

    package func qos(prefetchCount: UInt16) async throws {
        try await perform { io in try io.qos(prefetchCount: prefetchCount) }
    }

    // MARK: - Consuming

    /// A consumer whose deliveries are a stream (see `consume(queue:)`).
    package struct Consumer: Sendable {
        package let tag: String
        package let deliveries: AsyncThrowingStream<AMQPDelivery, Error>
    }

    /// Starts a consumer with manual acks whose deliveries are the returned
    /// stream. The stream ends without error after `cancel(consumerTag:)`, and
    /// with an `AMQPError` when the broker cancels the consumer or the
    /// connection ends. The stream is unbounded on purpose: the bound is the
    /// `basic.qos` prefetch, and a dropping buffer would leave deliveries
    /// unacked until the channel dies.
    package func consume(queue: String) async throws -> Consumer {
        let (stream, continuation) = AsyncThrowingStream<AMQPDelivery, Error>.makeStream()
        let tag = try await consume(queue: queue, into: StreamDestination(continuation: continuation))
        return Consumer(tag: tag, deliveries: stream)
    }

    /// Starts a consumer with manual acks whose deliveries, and then its end,
    /// go to `destination` (its one output), called on the connection's IO
    /// thread in delivery order: no task hop between the socket and wherever
    /// the destination puts a delivery. Returns the consumer tag. When
    /// `basic.consume` fails this throws and `destination` is never called.
    package func consume(queue: String, into destination: some AMQPConsumerDestination) async throws -> String {
        try await perform { io in try io.consume(queue: queue, destination: destination) }
    }

    /// Cancels a consumer; its destination is finished (without error) once
    /// every delivery the broker sent before `cancel-ok` was handed to it.
    package func cancel(consumerTag: String) async throws {
        try await perform { io in try io.cancel(consumerTag: consumerTag) }
    }

    // MARK: - Acks

    /// Acks a delivery. Fire-and-forget: the ack is written in order with every
    /// other command. Throws when the connection has ended (the broker will
    /// redeliver the message; the ack must not be sent anywhere else).
    package func ack(deliveryTag: UInt64, multiple: Bool = false) throws {
        if let error = enqueue({ io in io.ack(deliveryTag, multiple: multiple) }) { throw error }
    }

    package func reject(deliveryTag: UInt64, requeue: Bool) throws {
        if let error = enqueue({ io in io.reject(deliveryTag, requeue: requeue) }) { throw error }
    }

    /// `basic.nack`: like reject, optionally for every unacked tag up to this one.
    package func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) throws {
        if let error = enqueue({ io in io.nack(deliveryTag, multiple: multiple, requeue: requeue) }) { throw error }
    }

    // MARK: - Publishing

    /// Publishes and returns once the broker confirmed the message. Throws
    /// `.nacked` on a nack, `.returned` when `mandatory` and unroutable, or the
    /// connection's error if it ends first (the outcome is then unknown).
    package func publish(exchange: String, routingKey: String, body: [UInt8], properties: AMQPProperties = AMQPProperties(), mandatory: Bool = false) async throws {
        let id = Self.publishIds.add(1, ordering: .relaxed).newValue
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                let refused = enqueue { io in
                    io.publish(exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: mandatory,
                               id: id, continuation: continuation)
                }
                if let refused { continuation.resume(throwing: refused) }
            }
        } onCancel: {
            // Stop waiting for the confirm (e.g. shutdown past the drain
            // deadline while the broker withholds confirms). The message may
            // still be confirmed later; the caller must not ack its input.
            enqueue { io in io.abandonPublish(id: id) }
        }
    }

    private static let publishIds = Atomic<UInt64>(0)

    // MARK: - Closing

    /// Closes the channel and the connection cleanly (commands queued before
    /// this one, such as acks, are sent first) and waits for the thread to end.
    package func close() async {
        if enqueue({ io in io.requestClose() }) == nil {
            _ = await closed()
        }
    }

    /// Called by the IO thread when it has ended.
    func finish(with error: AMQPError) -> [Command] {
        let (waiters, leftovers) = shared.withLock { s -> ([CheckedContinuation<AMQPError?, Never>], [Command]) in
            if s.closed == nil { s.closed = error }
            s.finished = true
            let w = s.closeWaiters
            s.closeWaiters = []
            let c = s.commands
            s.commands = []
            return (w, c)
        }
        let reported: AMQPError? = error.kind == .closed ? nil : error
        for w in waiters { w.resume(returning: reported) }
        return leftovers  // the IO thread runs them against its dead state: each fails at once
    }

    func setBlocked(_ blocked: Bool) {
        shared.withLock { $0.blocked = blocked }
    }
}

final class ThreadStart {
    let io: AMQPIO
    let started: CheckedContinuation<Void, Error>
    init(io: AMQPIO, started: CheckedContinuation<Void, Error>) {
        self.io = io
        self.started = started
    }
}

/// The thread's entry point: a plain global function, so it carries no actor
/// isolation (a closure written in top-level code would be main-actor isolated
/// and trap on this thread).
private func amqpThreadEntry(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ThreadStart>.fromOpaque(context!).takeRetainedValue()
    start.io.run(started: start.started)
    return nil
}

import CRabbitMQ
import Glibc

extension AMQPIO {
    func declareQueue(_ name: String, passive: Bool = false, durable: Bool, exclusive: Bool, autoDelete: Bool, arguments: [String: AMQPArgument]) throws -> (name: String, messageCount: UInt32, consumerCount: UInt32) {
        try beginRPC()
        let arena = CArena()
        let args = arena.table(AMQPTable(arguments.sorted { $0.key < $1.key }.map { AMQPTable.Entry(key: $0.key, value: $0.value) }))
        let ok = amqp_queue_declare(state, channel, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0, args)
        try check("queue.declare \(name)")
        guard let ok else { throw AMQPError(kind: .library, text: "queue.declare \(name): no reply") }
        return (ok.pointee.queue.swiftString, ok.pointee.message_count, ok.pointee.consumer_count)
    }

    func declareExchange(_ name: String, type: String, passive: Bool = false, durable: Bool) throws {
        try beginRPC()
        let arena = CArena()
        amqp_exchange_declare(state, channel, arena.bytes(name), arena.bytes(type), passive ? 1 : 0, durable ? 1 : 0, 0, 0, amqp_empty_table)
        try check("exchange.declare \(name)")
    }

    func bindQueue(_ queue: String, exchange: String, routingKey: String) throws {
        try beginRPC()
        let arena = CArena()
        amqp_queue_bind(state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), amqp_empty_table)
        try check("queue.bind \(queue)")
    }

    func deleteQueue(_ name: String) throws -> UInt32 {
        try beginRPC()
        let arena = CArena()
        let ok = amqp_queue_delete(state, channel, arena.bytes(name), 0, 0)
        try check("queue.delete \(name)")
        return ok?.pointee.message_count ?? 0
    }

    func qos(prefetchCount: UInt16) throws {
        try beginRPC()
        amqp_basic_qos(state, channel, 0, prefetchCount, 0)
        try check("basic.qos")
    }

    func consume(queue: String, destination: any AMQPConsumerDestination) throws -> String {
        try beginRPC()
        let arena = CArena()
        let ok = amqp_basic_consume(state, channel, arena.bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table)
        try check("basic.consume \(queue)")
        guard let ok else { throw AMQPError(kind: .library, text: "basic.consume: no reply") }
        let tag = ok.pointee.consumer_tag.swiftString
        consumers[tag] = destination
        return tag
    }

    /// A second channel for `queueCounts`, opened on first use: a passive
    /// declare answered there tells how many messages wait even when the
    /// consumer's channel (1) is stuck on the broker's side.
    static let checkChannel: amqp_channel_t = 2

    /// A passive `queue.declare` on `checkChannel`, waiting `timeoutMs` at
    /// most for the answer (the thread waits meanwhile; frames of channel 1
    /// that arrive are queued and handled after). Any failure, a timeout
    /// included, ends the connection, as every failed RPC does.
    func queueCounts(_ name: String, timeoutMs: Int) throws -> (messageCount: UInt32, consumerCount: UInt32) {
        try beginRPC()
        var short = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
        amqp_set_rpc_timeout(state, &short)
        defer {
            var normal = timeval(tv_sec: options.rpcTimeoutSeconds, tv_usec: 0)
            amqp_set_rpc_timeout(state, &normal)
        }
        let ch = Self.checkChannel
        if !checkChannelOpen {
            amqp_channel_open(state, ch)
            try check("channel.open \(ch)", channel: ch)
            checkChannelOpen = true
        }
        let arena = CArena()
        let ok = amqp_queue_declare(state, ch, arena.bytes(name), 1, 0, 0, 0, amqp_empty_table)
        try check("queue.declare \(name) (passive)", channel: ch)
        guard let ok else { throw AMQPError(kind: .library, text: "queue.declare \(name): no reply") }
        return (ok.pointee.message_count, ok.pointee.consumer_count)
    }

    func cancel(consumerTag: String) throws {
        try beginRPC()
        guard consumers[consumerTag] != nil else { return }
        let arena = CArena()
        // Cancelling is part of shutting down: wait 2 s at most for cancel-ok.
        // A broker in a resource alarm stops reading from blocked connections,
        // and a shutdown must not hang on it (the connection then counts as
        // failed, and closing it returns the unacked messages to the queue).
        var short = timeval(tv_sec: 2, tv_usec: 0)
        amqp_set_rpc_timeout(state, &short)
        defer {
            var normal = timeval(tv_sec: options.rpcTimeoutSeconds, tv_usec: 0)
            amqp_set_rpc_timeout(state, &normal)
        }
        amqp_basic_cancel(state, channel, arena.bytes(consumerTag))
        try check("basic.cancel")
        // Deliveries that arrived while we waited for cancel-ok were queued by
        // the library: hand them on before finishing the destination.
        while amqp_frames_enqueued(state) != 0 && failure == nil {
            pump(budget: 1)
        }
        consumers.removeValue(forKey: consumerTag)?.finish(nil)
    }

    /// The caller stopped waiting (cancelled): resume it now; a later confirm
    /// for this publish finds nothing and is ignored.
    func abandonPublish(id: UInt64) {
        guard let index = pending.firstIndex(where: { $0.id == id }) else { return }
        pending.remove(at: index).continuation.resume(throwing: CancellationError())
    }
}

import DariBridge
import Logging
import RabbitMQ
import Synchronization

/// What the consumers of one connection received and what of it was settled
/// (acked, rejected, requeued), for the stall watchdog: deliveries held
/// unacked = received - settled, compared with the prefetch.
final class ConsumerActivity: Sendable {
    let delivered = Atomic<Int>(0)
    let settled = Atomic<Int>(0)
    /// The watchdog found the consumer stalled; cleared by the next delivery
    /// (or once no message waits). Carried over to the next connection.
    let stalled: Atomic<Bool>

    init(stalled: Bool = false) {
        self.stalled = Atomic(stalled)
    }

    var held: Int { delivered.load(ordering: .relaxed) - settled.load(ordering: .relaxed) }
}

/// How a consumer ended: `error` nil when we cancelled it (or closed cleanly).
struct ConsumerEnded: Sendable {
    var error: AMQPError?
}

/// The broker adapter's consumer destination (the consumer's one output):
/// each delivery goes from the AMQP IO thread straight into the pipeline's
/// channel, no relay task in between; the consumer's end goes to `ended`.
struct PipelineFeed: AMQPConsumerDestination {
    let pipeline: InboundChannel
    weak let connection: AMQPConnection?
    let activity: ConsumerActivity
    let ended: OneShot<ConsumerEnded>
    let logger: Logger

    func deliver(_ delivery: AMQPDelivery) {
        activity.delivered.add(1, ordering: .relaxed)
        if activity.stalled.load(ordering: .relaxed), activity.stalled.exchange(false, ordering: .relaxed) {
            logger.info("deliveries flow again; ready")
        }
        if !pipeline.yield(InboundMessage(delivery)) {
            // Shutting down: the pipeline takes nothing more. Hand the delivery
            // back now (another replica can take it) rather than at connection
            // close, after the drain. Enqueued from the IO thread: no lock held.
            activity.settled.add(1, ordering: .relaxed)
            try? connection?.reject(deliveryTag: delivery.deliveryTag, requeue: true)
        }
    }

    func finish(_ error: AMQPError?) {
        ended.fire(ConsumerEnded(error: error))
    }
}

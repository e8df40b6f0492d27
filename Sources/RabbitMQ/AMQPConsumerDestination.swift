/// Where a consumer's deliveries go: its one output, given once to
/// `AMQPConnection.consume(queue:into:)`. Both methods are called on the
/// connection's IO thread, so keep them short (hand the delivery on, e.g.
/// yield it into a stream); nothing else of the connection runs meanwhile.
package protocol AMQPConsumerDestination: Sendable {
    /// One delivery, in the broker's order.
    func deliver(_ delivery: AMQPDelivery)

    /// The consumer ended; called once, after its last delivery. `nil`: we
    /// cancelled it (`cancel(consumerTag:)`) or closed the connection cleanly;
    /// else why it ended: the broker cancelled it (`.consumerCancelled`: queue
    /// deleted, its node gone) or the connection failed.
    func finish(_ error: AMQPError?)
}

/// The destination of `consume(queue:)`: the stream it returns.
struct StreamDestination: AMQPConsumerDestination {
    let continuation: AsyncThrowingStream<AMQPDelivery, Error>.Continuation

    func deliver(_ delivery: AMQPDelivery) {
        continuation.yield(delivery)
    }

    func finish(_ error: AMQPError?) {
        if let error { continuation.finish(throwing: error) } else { continuation.finish() }
    }
}

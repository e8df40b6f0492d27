import Foundation
import RabbitMQ
import Synchronization

/// Collects outcomes from the cluster while its nodes die and restart: a
/// quorum results queue (a classic queue on a dead node would drop what is
/// routed to it meanwhile), any node, reconnect on every loss. An outcome
/// redelivered to the observer itself (its own connection died between
/// counting and acking: `redelivered` set, an outcome message_id already
/// counted) is not counted again, so `duplicates` counts only outcomes that
/// reached the results exchange more than once.
final class ClusterObserver: Sendable {
    let exchange: String
    let queue: String
    let counts = Mutex<[String: Int]>([:])
    let seenOutcomeIds = Mutex<Set<String>>([])
    let task = Mutex<Task<Void, Never>?>(nil)

    init(exchange: String) {
        self.exchange = exchange
        self.queue = "\(exchange).observer"
    }

    /// Declares the results exchange and the observer's queue before anything is published.
    func prepare() async throws {
        let c = try await ClusterBroker.connectAny()
        try await c.declareExchange(exchange, type: "topic", durable: true)
        try await c.declareQueue(queue, durable: true, arguments: ["x-queue-type": .string("quorum")])
        try await c.bindQueue(queue, exchange: exchange, routingKey: "#")
        await c.close()
    }

    func start() {
        let t = Task { [self] in
            while !Task.isCancelled {
                do {
                    let c = try await ClusterBroker.connectAny()
                    let consumer = try await c.consume(queue: queue)
                    try await withTaskCancellationHandler {
                        for try await d in consumer.deliveries {
                            record(d)
                            try? c.ack(deliveryTag: d.deliveryTag)
                        }
                    } onCancel: {
                        Task { await c.close() }
                    }
                    await c.close()
                } catch {}
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        task.withLock { $0 = t }
    }

    private func record(_ d: AMQPDelivery) {
        if let outcomeId = d.properties.messageId {
            let fresh = seenOutcomeIds.withLock { $0.insert(outcomeId).inserted }
            if !fresh && d.redelivered { return }
        }
        if let id = ReceivedOutcome(d).messageId {
            counts.withLock { $0[id, default: 0] += 1 }
        }
    }

    func stop() async {
        let t = task.withLock { $0 }
        t?.cancel()
        await t?.value
    }

    var distinct: Int { counts.withLock { $0.count } }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }
    var duplicates: Int { total - distinct }

    func waitForDistinct(_ n: Int, timeout: Duration) async -> Int {
        let deadline = ContinuousClock.now + timeout
        while distinct < n && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return distinct
    }
}

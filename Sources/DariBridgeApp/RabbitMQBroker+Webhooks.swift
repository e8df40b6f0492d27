import DariBridge
import RabbitMQ

/// The webhook receiver's side of the worker's broker connection: the
/// webhook exchange is checked (declared when missing) at each (re)connect
/// when the receiver is on, and verified webhooks are published on the same
/// confirmed channel as the outcomes.
extension RabbitMQBroker {
    /// Called from `ensureTopology`: a passive check first (an operator's
    /// exchange is used as it is), a durable topic exchange when missing.
    func ensureWebhookExchange(on conn: AMQPConnection, url: AMQPURL) async throws -> AMQPConnection {
        guard config.webhook.isOn else { return conn }
        let exchange = config.webhook.exchange
        do {
            try await conn.checkExchange(exchange)
            return conn
        } catch let e as AMQPError where e.replyCode == 404 {
            // The 404 closed the (only) channel: a new connection to the same node.
            await conn.close()
            let fresh = try await AMQPConnection.connect(to: url, options: connectionOptions, logger: logger)
            try await fresh.declareExchange(exchange, type: "topic", durable: true)
            logger.info("declared the webhook exchange", metadata: ["exchange": "\(exchange)"])
            return fresh
        }
    }

    /// Publishes a verified webhook (persistent, mandatory, body unchanged) and
    /// returns once the broker confirmed it (routed to at least one queue). Fails at once when not connected or
    /// blocked by a resource alarm, and after `timeout` without a confirm
    /// (the message may still be stored then: Dari's retry may publish it
    /// again, at-least-once).
    package func publishWebhook(_ webhook: VerifiedWebhook, exchange: String, timeout: Duration) async throws(WebhookPublishFailure) {
        guard let conn = state.withLock({ $0.connection }), conn.isOpen else { throw .notConnected }
        if conn.isBlocked { throw .blocked }
        let headers: AMQPTable = [
            "x-dari-webhook-timestamp": .int(webhook.timestamp),
            "x-dari-webhook-id": .string(webhook.deliveryId),
        ]
        let properties = AMQPProperties(contentType: "application/json", messageId: webhook.deliveryId, persistent: true,
                                        timestamp: UInt64(clamping: max(0, webhook.timestamp)), headers: headers)
        let body = webhook.body
        let routingKey = webhook.routingKey
        let result: WebhookPublishFailure? = await withTaskGroup(of: WebhookPublishFailure?.self) { group in
            group.addTask {
                do {
                    // Mandatory: a webhook no queue takes is not stored, so it is not a 2xx.
                    try await conn.publish(exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: true)
                    return nil
                } catch let e as AMQPError where e.kind == .nacked {
                    return .nacked
                } catch let e as AMQPError where e.kind == .returned {
                    return .unroutable
                } catch {
                    return Task.isCancelled ? .timedOut : .lost
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .timedOut
            }
            let first = await group.next() ?? .lost
            group.cancelAll()
            return first
        }
        if let result { throw result }
    }
}

/// Why a webhook was not stored; the answer is 503 in every case.
package enum WebhookPublishFailure: Error, Sendable, Equatable {
    case notConnected, blocked, nacked, timedOut, lost
    /// No queue is bound for its routing key: the broker returned it (mandatory).
    case unroutable
}

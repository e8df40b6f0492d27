import DariBridge
#if canImport(Glibc)
import Glibc
#endif
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
        // The answer must not wait past `timeout`, even when the connection's
        // thread is itself stuck (a broker in an alarm stops reading, and an
        // RPC on that thread then waits for its own timeout): the first of the
        // publish and the timer answers; the loser is cancelled and left to end
        // on its own (structured children would be awaited).
        let result: WebhookPublishFailure? = await withCheckedContinuation { (continuation: CheckedContinuation<WebhookPublishFailure?, Never>) in
            let answer = FirstAnswer(continuation)
            let publishing = Task {
                do {
                    // Mandatory: a webhook no queue takes is not stored, so it is not a 2xx.
                    try await conn.publish(exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: true)
                    answer.give(nil)
                } catch let e as AMQPError where e.kind == .nacked {
                    answer.give(.nacked)
                } catch let e as AMQPError where e.kind == .returned {
                    answer.give(.unroutable)
                } catch {
                    answer.give(.lost)
                }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if answer.give(.timedOut) { publishing.cancel() }
            }
            answer.onAnswer = { timer.cancel() }
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

/// Resumes a continuation once: the first `give` wins.
final class FirstAnswer: @unchecked Sendable {
    private let lock = PthreadLock()
    private var continuation: CheckedContinuation<WebhookPublishFailure?, Never>?
    private var done = false
    private var _onAnswer: (@Sendable () -> Void)?

    init(_ continuation: CheckedContinuation<WebhookPublishFailure?, Never>) { self.continuation = continuation }

    /// Called after the answer (or at once, if it was already given).
    var onAnswer: (@Sendable () -> Void)? {
        get { nil }
        set {
            let runNow = lock.withLock { () -> Bool in
                if done { return true }
                _onAnswer = newValue
                return false
            }
            if runNow { newValue?() }
        }
    }

    @discardableResult
    func give(_ value: WebhookPublishFailure?) -> Bool {
        let (c, after) = lock.withLock { () -> (CheckedContinuation<WebhookPublishFailure?, Never>?, (@Sendable () -> Void)?) in
            if done { return (nil, nil) }
            done = true
            defer { continuation = nil; _onAnswer = nil }
            return (continuation, _onAnswer)
        }
        guard let c else { return false }
        c.resume(returning: value)
        after?()
        return true
    }
}

/// A plain pthread mutex guarding FirstAnswer.
final class PthreadLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}

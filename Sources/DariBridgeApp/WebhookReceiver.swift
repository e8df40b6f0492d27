import DariBridge
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// What the receiver does with one request, apart from HTTP: checks the path
/// and method, verifies, deduplicates, publishes, and says what to answer.
/// The HTTP server (`WebhookServer`) only reads the request and writes the answer.
package final class WebhookReceiver: Sendable {
    package typealias Publish = @Sendable (VerifiedWebhook) async throws(WebhookPublishFailure) -> Void

    let path: String
    let verifier: WebhookVerifier
    let metrics: WebhookMetrics
    let publish: Publish
    let now: @Sendable () -> Int64
    let deliveries: Mutex<WebhookDeliveries>
    let logger: Logger
    let publishWarnings = RateLimitedWarning(seconds: 10)

    package init(settings: WebhookSettings, metrics: WebhookMetrics, logger: Logger,
                 now: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }, publish: @escaping Publish) {
        path = settings.path
        verifier = settings.verifier
        self.metrics = metrics
        self.publish = publish
        self.now = now
        self.logger = logger
        deliveries = Mutex(WebhookDeliveries(capacity: settings.rememberedDeliveries, tolerance: settings.toleranceSeconds))
    }

    /// The request's target, before the body is read: nil when it is ours
    /// (then read the body, at most `maxBodyBytes`, and call `handle`).
    package func checkTarget(method: String, path requestPath: String, contentLength: Int?) -> WebhookResponse? {
        metrics.received.increment()
        let target = requestPath.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if target != path { return reject(.notFound) }
        if method != "POST" { return reject(.methodNotAllowed) }
        if let contentLength, contentLength > verifier.maxBodyBytes { return reject(.tooLarge) }
        return nil
    }

    /// A body over the limit, found while reading it.
    package func bodyTooLarge() -> WebhookResponse { reject(.tooLarge) }

    /// Verifies, deduplicates and publishes one webhook to the receiver's path.
    package func handle(timestamps: [String], signatures: [String], body: [UInt8]) async -> WebhookResponse {
        let clock = now()
        let webhook: VerifiedWebhook
        switch verifier.verify(timestamps: timestamps, signatures: signatures, body: body, now: clock) {
        case .failure(let reason):
            logger.debug("webhook refused", metadata: ["reason": "\(reason.rawValue)", "bytes": "\(body.count)"])
            return reject(reason)
        case .success(let w): webhook = w
        }
        let key = webhook.key
        switch deliveries.withLock({ $0.claim(key, now: clock) }) {
        case .stored:
            metrics.duplicate.increment()
            logger.debug("webhook duplicate: already stored", metadata: ["webhook_id": "\(webhook.deliveryId)"])
            return .duplicate
        case .inFlight:
            return reject(.inProgress)
        case .new:
            break
        }
        do {
            try await publish(webhook)
        } catch {
            deliveries.withLock { $0.release(key) }
            if let held = publishWarnings.admit() {
                logger.warning(error == .unroutable
                               ? "webhook not stored: no queue is bound to the webhook exchange for its routing key; answered 503 (Dari retries)"
                               : "webhook not stored: the broker did not confirm it; answered 503 (Dari retries)",
                               metadata: ["reason": "\(error)", "routing_key": "\(webhook.routingKey)", "held_back": "\(held)"])
            }
            return reject(error == .unroutable ? .unroutable : .brokerUnavailable)
        }
        deliveries.withLock { $0.stored(key) }
        metrics.published.increment()
        logger.debug("webhook stored", metadata: ["webhook_id": "\(webhook.deliveryId)", "routing_key": "\(webhook.routingKey)", "bytes": "\(body.count)"])
        return .accepted
    }

    private func reject(_ reason: WebhookRejection) -> WebhookResponse {
        metrics.reject(reason)
        return reason.response(tolerance: verifier.tolerance, maxBodyBytes: verifier.maxBodyBytes)
    }
}

/// One warning per interval (the domain's RateLimitedLog is internal to it).
final class RateLimitedWarning: Sendable {
    private let interval: Duration
    private let state = Mutex<(last: ContinuousClock.Instant?, held: Int)>((nil, 0))
    init(seconds: Int) { interval = .seconds(seconds) }

    func admit(now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { s in
            if let last = s.last, now - last < interval {
                s.held += 1
                return nil
            }
            defer { s = (now, 0) }
            return s.held
        }
    }
}

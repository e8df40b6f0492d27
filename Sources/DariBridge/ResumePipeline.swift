#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Tracing

/// Settings of the per-message path.
package struct PipelineSettings: Sendable {
    package var resultsExchange: String
    package var maxMessageBytes: Int
    package var urlPolicy: URLPolicy
    /// Messages handled at once; deliveries beyond it (prefetch above the
    /// concurrency) wait in memory until a slot frees.
    package var concurrency: Int
    /// A delivery whose `x-delivery-count` has reached this gets `delivery_limit`, no POST.
    package var maxDeliveries: Int
    /// Queue-name prefixes a `reply_to` may name; nil: any.
    package var allowedReplyTo: [String]?

    package init(resultsExchange: String, maxMessageBytes: Int, urlPolicy: URLPolicy,
                concurrency: Int = 64, maxDeliveries: Int = 5, allowedReplyTo: [String]? = nil) {
        self.resultsExchange = resultsExchange
        self.maxMessageBytes = maxMessageBytes
        self.urlPolicy = urlPolicy
        self.concurrency = max(1, concurrency)
        self.maxDeliveries = max(1, maxDeliveries)
        self.allowedReplyTo = allowedReplyTo
    }
}

/// One message, one pipeline: decode, URL policy, POST with retries, publish
/// the outcome (confirmed), then ack. Messages run concurrently; nothing is
/// shared between them but the broker and the recent-outcomes memory.
///
/// Every exit acks only after a confirmed outcome or a confirmed hand-off of
/// that same delivery to a delay queue (or, for a redelivery of a delivery
/// whose hand-off was confirmed, that hand-off).
package final class ResumePipeline: Sendable {
    package let settings: PipelineSettings
    package let executor: ResumeExecutor
    package let broker: any MessageBroker
    package let recent: RecentOutcomes
    package let metrics: PipelineMetrics
    let inFlight = InFlightMessages()
    let slots: DeliverySlots
    let publishWarnings = RateLimitedLog(interval: .seconds(10))
    let logger: Logger

    package init(settings: PipelineSettings, executor: ResumeExecutor, broker: any MessageBroker,
                recent: RecentOutcomes = RecentOutcomes(), metrics: PipelineMetrics = PipelineMetrics(), logger: Logger) {
        self.settings = settings
        var executor = executor
        // The executor measures each HTTP attempt into the pipeline's metrics
        // unless it was given its own.
        if executor.metrics == nil { executor.metrics = metrics }
        self.executor = executor
        self.broker = broker
        self.recent = recent
        self.metrics = metrics
        self.logger = logger
        self.slots = DeliverySlots(limit: settings.concurrency)
    }

    /// The whole path for one message. Returns after the ack, or without an
    /// ack when cancelled (shutdown past the drain deadline).
    package func handle(_ message: InboundMessage) async {
        guard let tracer = executor.tracer else {
            await handle(message, traceHeaders: MessageTracing.passThrough(message.headers))
            return
        }
        await Self.tracedHandle(tracer, self, message)
    }

    /// The message in a `consumer` span that continues the trace of its headers.
    private static func tracedHandle<T: Tracer>(_ tracer: T, _ pipeline: ResumePipeline, _ message: InboundMessage) async {
        let context = MessageTracing.incomingContext(tracer, message.headers)
        await tracer.withSpan("dari-bridge resume request", context: context, ofKind: .consumer) { span in
            span.attributes["messaging.system"] = "rabbitmq"
            span.attributes["messaging.message.body.size"] = message.bodySize
            if message.redelivered { span.attributes["dari_bridge.redelivered"] = true }
            await pipeline.handle(message, traceHeaders: [:])
        }
    }

    /// `traceHeaders`: the trace context passed on when there is no tracer.
    private func handle(_ message: InboundMessage, traceHeaders: TraceHeaders) async {
        let receivedAt = executor.now()
        metrics.messageStarted()
        defer { metrics.messageEnded() }
        var log = logger
        // Escaped only when a line is written: most messages log nothing at the default level.
        if let id = message.messageId { log[metadataKey: "message_id"] = .stringConvertible(LogSafe.Deferred(id)) }
        if let id = message.correlationId { log[metadataKey: "correlation_id"] = .stringConvertible(LogSafe.Deferred(id)) }

        let outcome: Outcome
        if message.bodyDiscarded || message.bodySize > settings.maxMessageBytes {
            let detail = "message body is \(message.bodySize) bytes, over the limit of \(settings.maxMessageBytes)"
            log.debug("invalid message", metadata: ["detail": "\(detail)"])
            outcome = failed(message, receivedAt, url: nil, error: .invalidMessage, detail: detail)
        } else {
            switch ResumeRequestDecoder.decode(message.body, maxBytes: settings.maxMessageBytes) {
            case .failure(let invalid):
                log.debug("invalid message", metadata: ["detail": "\(LogSafe.text(invalid.detail))", "bytes": "\(message.body.count)"])
                outcome = failed(message, receivedAt, url: invalid.resumeURL, error: .invalidMessage, detail: invalid.detail)
            case .success(let request):
                guard let decided = await resume(request, message, receivedAt: receivedAt, traceHeaders: traceHeaders, log: log) else { return }
                outcome = decided
            }
        }
        guard await publish(outcome, for: message, traceHeaders: traceHeaders, log: log) else {
            log.debug("abandoned before the outcome was confirmed; the message stays on the queue")
            metrics.abandoned.add(1, ordering: .relaxed)
            return
        }
        metrics.count(outcome)
        log.debug("done", metadata: ["status": "\(outcome.status.rawValue)", "attempts": "\(outcome.attempts)"])
        await broker.ack(message.token)
        metrics.messageDuration.recordNanoseconds((ContinuousClock.now - message.arrivedAt).nanoseconds)
    }

    /// A valid request: known outcome, delivery limit, URL policy, POST.
    /// Returns nil when the delivery was dealt with here (acked after a
    /// confirmed hand-off, or abandoned at shutdown).
    private func resume(_ request: ResumeRequest, _ message: InboundMessage, receivedAt: Date, traceHeaders: TraceHeaders,
                        log: Logger) async -> Outcome? {
        let key = RecentOutcomes.identity(messageId: message.messageId, request: request)
        let prior = Self.priorAttempts(message.headers, maxAttempts: executor.policy.maxAttempts)
        if message.redelivered {
            // The original may still be running here (its ack will be dropped): wait for it.
            await inFlight.waitUntilDone(key)
        }
        let registered = inFlight.begin(key)
        defer { if registered { inFlight.end(key) } }
        // The same delivery as one this process handed to a delay queue (same
        // attempts count as the delivery that was handed off; the delayed copy
        // carries a higher one): that hand-off was confirmed, the copy carries
        // the message on. A redelivered *copy* does not match and is handled.
        if message.redelivered, recent.deferredFrom(key) == prior {
            log.debug("redelivered message that already went to a delay queue: acked, no POST")
            metrics.republishedFromMemory.increment()
            await broker.ack(message.token)
            return nil
        }
        if message.redelivered, let known = recent.lookup(key)?.outcome(
            resumeURL: request.resumeURL, messageId: message.messageId, correlationId: message.correlationId) {
            log.debug("redelivered message with a known outcome: republishing it, no POST")
            metrics.republishedFromMemory.increment()
            return known
        }
        if let count = Self.deliveryCount(message.headers), count >= settings.maxDeliveries {
            log.warning("delivery limit reached: failed outcome without a POST", metadata: ["deliveries": "\(count)"])
            return failed(message, receivedAt, url: request.resumeURL, error: .deliveryLimit,
                          detail: "delivered \(count < Int.max ? "\(count + 1)" : "more than \(count)") times (x-delivery-count \(count)), at or over the limit of \(settings.maxDeliveries) (DARI_BRIDGE_MAX_DELIVERIES): not sent to Dari again")
        }
        var request = request
        switch settings.urlPolicy.approve(request.resumeURL) {
        case .success(let approved):
            request.approved = approved
        case .failure(let refusal):
            log.debug("resume URL not allowed", metadata: ["reason": "\(LogSafe.text(refusal.reason))"])
            return failed(message, receivedAt, url: request.resumeURL, error: .urlNotAllowed, detail: refusal.reason)
        }
        log.debug("resuming", metadata: ["variables": "\(request.variableKeys.count) keys, \(request.variablesJSON.count) bytes",
                                         "attempt": "\(prior + 1)"])
        let result: ResumeExecutor.Result
        do {
            result = try await executor.execute(request, traceHeaders: traceHeaders, priorAttempts: prior,
                                                heldSince: message.arrivedAt)
        } catch {
            log.debug("abandoned before an answer; the message stays on the queue")
            metrics.abandoned.add(1, ordering: .relaxed)
            return nil
        }
        // Both are bounded (0...maxAttempts): no overflow whatever the header said.
        metrics.httpAttempts.increment(by: max(0, result.attempts - prior))
        if case .deferred(let delay) = result.kind {
            await deferToDelayQueue(message, key: key, priorAttempts: prior, attempts: result.attempts, delay: delay, log: log)
            return nil
        }
        let outcome = Outcome(
            status: result.kind == .succeeded ? .succeeded : .failed,
            resumeURL: request.resumeURL, messageId: message.messageId, correlationId: message.correlationId,
            attempts: result.attempts, httpStatus: result.httpStatus, responseJSON: result.responseJSON,
            error: Self.errorKind(result.kind),
            detail: result.detail, receivedAt: receivedAt, completedAt: executor.now())
        recent.remember(outcome, for: key)
        return outcome
    }

    static func errorKind(_ kind: ResumeExecutor.Result.Kind) -> Outcome.ErrorKind? {
        switch kind {
        case .succeeded: return nil
        case .dariError: return .dariError
        case .refused: return .urlNotAllowed
        case .retriesExhausted, .deferred: return .retriesExhausted
        }
    }

    /// Hands the message to a delay queue (confirmed), then acks the delivery.
    private func deferToDelayQueue(_ message: InboundMessage, key: String, priorAttempts: Int, attempts: Int, delay: Duration, log: Logger) async {
        log.debug("long wait: moving to a delay queue", metadata: ["attempts": "\(attempts)", "delay": "\(delay)"])
        let moved = await untilConfirmed(log: log) { () throws(PublishFailure) in
            try await self.broker.deferMessage(message, attempts: attempts, delay: delay)
        }
        guard moved else {
            metrics.abandoned.add(1, ordering: .relaxed)
            return
        }
        metrics.deferred.increment()
        recent.rememberDeferred(key, handedOffAttempts: priorAttempts)
        await broker.ack(message.token)
    }

    func failed(_ message: InboundMessage, _ receivedAt: Date, url: String?, error: Outcome.ErrorKind, detail: String) -> Outcome {
        Outcome(status: .failed, resumeURL: url, messageId: message.messageId, correlationId: message.correlationId,
                attempts: 0, httpStatus: nil, responseJSON: nil, error: error, detail: detail,
                receivedAt: receivedAt, completedAt: executor.now())
    }
}

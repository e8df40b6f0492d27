#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Tracing

/// Publishing outcomes: to the results exchange (and a copy to an allowed
/// reply_to), retried until the broker confirms.
extension ResumePipeline {
    static let replyCopyAttempts = 5

    /// Publishes to the results exchange (and to reply_to), retrying until the
    /// broker confirms. Returns false only when cancelled first.
    /// `traceHeaders` go on the outcome (and its copy); with a tracer, what it
    /// injects for a `producer` span around the publish instead.
    func publish(_ outcome: Outcome, for message: InboundMessage, traceHeaders: TraceHeaders, log: Logger) async -> Bool {
        guard let tracer = executor.tracer else {
            return await publish(outcome, for: message, headers: traceHeaders, log: log)
        }
        return await Self.tracedPublish(tracer, self, outcome, message, log)
    }

    private static func tracedPublish<T: Tracer>(_ tracer: T, _ pipeline: ResumePipeline, _ outcome: Outcome,
                                                 _ message: InboundMessage, _ log: Logger) async -> Bool {
        await MessageTracing.inSpan(tracer, "publish outcome", kind: .producer) { span, headers in
            span.attributes["messaging.system"] = "rabbitmq"
            span.attributes["messaging.destination.name"] = pipeline.settings.resultsExchange
            span.attributes["dari_bridge.outcome"] = outcome.error?.rawValue ?? "succeeded"
            if outcome.error != nil { span.setStatus(SpanStatus(code: .error)) }
            return await pipeline.publish(outcome, for: message, headers: headers, log: log)
        }
    }

    private func publish(_ outcome: Outcome, for message: InboundMessage, headers: TraceHeaders, log: Logger) async -> Bool {
        let body = outcome.encode()
        var main = OutgoingMessage(exchange: settings.resultsExchange, routingKey: outcome.routingKey, body: body,
                                   messageId: MessageID.random(), correlationId: message.correlationId)
        main.headers = headers
        guard let replyTo = message.replyTo, !replyTo.isEmpty else {
            return await publishReliably(main, log: log)
        }
        guard replyToAllowed(replyTo) else {
            metrics.replyToRefused.increment()
            log.warning("reply_to is not in DARI_BRIDGE_ALLOWED_REPLY_TO: no copy sent (the outcome still goes to the results exchange)",
                        metadata: ["reply_to": "\(LogSafe.text(replyTo))"])
            return await publishReliably(main, log: log)
        }
        // The reply copy is mandatory: a missing reply queue is reported, not retried.
        var reply = OutgoingMessage(exchange: "", routingKey: replyTo, body: body, messageId: MessageID.random(),
                                    correlationId: message.correlationId, mandatory: true)
        reply.headers = headers
        async let mainDone = publishReliably(main, log: log)
        // reply_to is the requester's choice: a copy the broker keeps refusing
        // (a full reject-publish queue) must not hold the input forever.
        let replyDone = await untilConfirmed(log: log, maxTransientFailures: Self.replyCopyAttempts) { () throws(PublishFailure) in
            try await self.broker.publish(reply)
        }
        return await mainDone && replyDone
    }

    func replyToAllowed(_ replyTo: String) -> Bool {
        // A queue name is a short string: at most 255 bytes.
        guard replyTo.utf8.count <= 255 else { return false }
        guard let prefixes = settings.allowedReplyTo else { return true }
        return prefixes.contains { replyTo.hasPrefix($0) }
    }

    private func publishReliably(_ message: OutgoingMessage, log: Logger) async -> Bool {
        await untilConfirmed(log: log) { () throws(PublishFailure) in
            try await self.broker.publish(message)
        }
    }

    /// Runs a broker publish until the broker confirms it, backing off from
    /// 100 ms to 5 s between transient failures. An unroutable (mandatory)
    /// message counts as done: only the reply_to copy is mandatory, and a
    /// missing reply queue is the requester's business. Returns false only when
    /// cancelled first (shutdown past the drain deadline).
    func untilConfirmed(log: Logger, maxTransientFailures: Int? = nil, _ publish: () async throws(PublishFailure) -> Void) async -> Bool {
        var delay = Duration.milliseconds(100)
        var failures = 0
        while true {
            do throws(PublishFailure) {
                try await publish()
                return true
            } catch {
                switch error {
                case .unroutable(let reason):
                    log.warning("outcome copy to reply_to could not be routed", metadata: ["reason": "\(LogSafe.text(reason))"])
                    return true
                case .transient(let reason):
                    failures += 1
                    if let maxTransientFailures, failures >= maxTransientFailures {
                        log.warning("outcome copy to reply_to refused repeatedly; giving up on the copy", metadata: ["reason": "\(LogSafe.text(reason))"])
                        return true
                    }
                    metrics.publishRetries.increment()
                    if let heldBack = publishWarnings.admit() {
                        log.warning("publish failed; retrying with backoff (logged at most every 10 s)",
                                    metadata: ["reason": "\(LogSafe.text(reason))", "similar_since_last": "\(heldBack)"])
                    } else {
                        log.debug("publish failed; retrying", metadata: ["reason": "\(LogSafe.text(reason))"])
                    }
                }
            }
            do {
                try await Task.sleep(for: delay)
            } catch {
                return false
            }
            delay = min(delay * 2, .seconds(5))
        }
    }
}

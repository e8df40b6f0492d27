#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

/// Settings of the per-message path.
public struct PipelineSettings: Sendable {
    public var resultsExchange: String
    public var maxMessageBytes: Int
    public var urlPolicy: URLPolicy

    public init(resultsExchange: String, maxMessageBytes: Int, urlPolicy: URLPolicy) {
        self.resultsExchange = resultsExchange
        self.maxMessageBytes = maxMessageBytes
        self.urlPolicy = urlPolicy
    }
}

/// One message, one pipeline: decode, URL policy, POST with retries, publish
/// the outcome (confirmed), then ack. Messages run concurrently; nothing is
/// shared between them but the broker and the recent-outcomes memory.
public final class ResumePipeline: Sendable {
    public let settings: PipelineSettings
    public let executor: ResumeExecutor
    public let broker: any MessageBroker
    public let recent: RecentOutcomes
    public let metrics: PipelineMetrics
    let inFlight = InFlightMessages()
    let logger: Logger

    public init(settings: PipelineSettings, executor: ResumeExecutor, broker: any MessageBroker,
                recent: RecentOutcomes = RecentOutcomes(), metrics: PipelineMetrics = PipelineMetrics(), logger: Logger) {
        self.settings = settings
        self.executor = executor
        self.broker = broker
        self.recent = recent
        self.metrics = metrics
        self.logger = logger
    }

    /// Handles deliveries concurrently until the sequence ends, then waits for
    /// those in flight. Cancel the calling task to abandon what is in flight
    /// (those messages stay unacked and go back to the queue). Deliveries that
    /// arrive once `isStopping()` is true are not started (left for redelivery).
    public func process<S: AsyncSequence & Sendable>(_ deliveries: S, isStopping: @escaping @Sendable () -> Bool) async where S.Element == InboundMessage {
        await withDiscardingTaskGroup { group in
            do {
                for try await message in deliveries {
                    if isStopping() { continue }
                    group.addTask { await self.handle(message) }
                }
            } catch {
                logger.warning("delivery stream ended with an error", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The whole path for one message. Returns after the ack, or without an
    /// ack when cancelled (shutdown past the drain deadline).
    public func handle(_ message: InboundMessage) async {
        let receivedAt = executor.now()
        metrics.received.add(1, ordering: .relaxed)
        metrics.inFlight.add(1, ordering: .relaxed)
        defer { metrics.inFlight.subtract(1, ordering: .relaxed) }
        var log = logger
        if let id = message.messageId { log[metadataKey: "message_id"] = "\(id)" }

        let outcome: Outcome
        switch ResumeRequestDecoder.decode(message.body, maxBytes: settings.maxMessageBytes) {
        case .failure(let invalid):
            log.debug("invalid message", metadata: ["detail": "\(invalid.detail)", "bytes": "\(message.body.count)"])
            outcome = failed(message, receivedAt, url: invalid.resumeURL, error: .invalidMessage, detail: invalid.detail)
        case .success(let request):
            let key = RecentOutcomes.identity(messageId: message.messageId, request: request)
            if message.redelivered {
                // The original may still be running here (its ack will be dropped): wait for it.
                await inFlight.waitUntilDone(key)
            }
            let registered = inFlight.begin(key)
            defer { if registered { inFlight.end(key) } }
            if message.redelivered, recent.wasDeferred(key) {
                log.debug("redelivered message that already went to a delay queue: acked, no POST")
                metrics.republishedFromMemory.add(1, ordering: .relaxed)
                await broker.ack(message.token)
                return
            }
            if message.redelivered, let known = recent.lookup(key)?.outcome(
                resumeURL: request.resumeURL, messageId: message.messageId, correlationId: message.correlationId) {
                log.debug("redelivered message with a known outcome: republishing it, no POST")
                metrics.republishedFromMemory.add(1, ordering: .relaxed)
                outcome = known
            } else if let reason = settings.urlPolicy.rejection(for: request.resumeURL) {
                log.debug("resume URL not allowed", metadata: ["reason": "\(reason)"])
                outcome = failed(message, receivedAt, url: request.resumeURL, error: .urlNotAllowed, detail: reason)
            } else {
                log.debug("resuming", metadata: ["variables": "\(request.variableKeys.count) keys, \(request.variablesJSON.count) bytes"])
                let result: ResumeExecutor.Result
                let prior = message.headers[attemptsHeader].flatMap { Int($0) } ?? 0
                do {
                    result = try await executor.execute(request, traceparent: Self.traceparent(message.headers), priorAttempts: prior)
                } catch {
                    log.debug("abandoned before an answer; the message stays on the queue")
                    metrics.abandoned.add(1, ordering: .relaxed)
                    return
                }
                if case .deferred(let delay) = result.kind {
                    metrics.httpAttempts.add(result.attempts - prior, ordering: .relaxed)
                    await deferToDelayQueue(message, key: key, attempts: result.attempts, delay: delay, log: log)
                    return
                }
                metrics.httpAttempts.add(result.attempts - prior, ordering: .relaxed)
                outcome = Outcome(
                    status: result.kind == .succeeded ? .succeeded : .failed,
                    resumeURL: request.resumeURL, messageId: message.messageId, correlationId: message.correlationId,
                    attempts: result.attempts, httpStatus: result.httpStatus, responseJSON: result.responseJSON,
                    error: Self.errorKind(result.kind),
                    detail: result.detail, receivedAt: receivedAt, completedAt: executor.now())
                recent.remember(outcome, for: key)
            }
        }
        guard await publish(outcome, for: message, log: log) else {
            log.debug("abandoned before the outcome was confirmed; the message stays on the queue")
            metrics.abandoned.add(1, ordering: .relaxed)
            return
        }
        metrics.count(outcome)
        log.debug("done", metadata: ["status": "\(outcome.status.rawValue)", "attempts": "\(outcome.attempts)"])
        await broker.ack(message.token)
    }

    static func errorKind(_ kind: ResumeExecutor.Result.Kind) -> Outcome.ErrorKind? {
        switch kind {
        case .succeeded: return nil
        case .dariError: return .dariError
        case .retriesExhausted, .deferred: return .retriesExhausted
        case .refused: return .urlNotAllowed
        }
    }

    /// Hands the message to a delay queue (confirmed), then acks the delivery.
    private func deferToDelayQueue(_ message: InboundMessage, key: String, attempts: Int, delay: Duration, log: Logger) async {
        log.debug("long wait: moving to a delay queue", metadata: ["attempts": "\(attempts)", "delay": "\(delay)"])
        let moved = await untilConfirmed(log: log) { () throws(PublishFailure) in
            try await self.broker.deferMessage(message, attempts: attempts, delay: delay)
        }
        guard moved else {
            metrics.abandoned.add(1, ordering: .relaxed)
            return
        }
        metrics.deferred.add(1, ordering: .relaxed)
        recent.rememberDeferred(key)
        await broker.ack(message.token)
    }

    private func failed(_ message: InboundMessage, _ receivedAt: Date, url: String?, error: Outcome.ErrorKind, detail: String) -> Outcome {
        Outcome(status: .failed, resumeURL: url, messageId: message.messageId, correlationId: message.correlationId,
                attempts: 0, httpStatus: nil, responseJSON: nil, error: error, detail: detail,
                receivedAt: receivedAt, completedAt: executor.now())
    }

    /// Publishes to the results exchange (and to reply_to), retrying until the
    /// broker confirms. Returns false only when cancelled first.
    private func publish(_ outcome: Outcome, for message: InboundMessage, log: Logger) async -> Bool {
        let body = outcome.encode()
        let main = OutgoingMessage(exchange: settings.resultsExchange, routingKey: outcome.routingKey, body: body,
                                   messageId: UUID().uuidString, correlationId: message.correlationId)
        guard let replyTo = message.replyTo, !replyTo.isEmpty else {
            return await publishReliably(main, log: log)
        }
        // The reply copy is mandatory: a missing reply queue is reported, not retried.
        let reply = OutgoingMessage(exchange: "", routingKey: replyTo, body: body, messageId: UUID().uuidString,
                                    correlationId: message.correlationId, mandatory: true)
        async let mainDone = publishReliably(main, log: log)
        // reply_to is the requester's choice: a copy the broker keeps refusing
        // (a full reject-publish queue) must not hold the input forever.
        let replyDone = await untilConfirmed(log: log, maxTransientFailures: Self.replyCopyAttempts) { () throws(PublishFailure) in
            try await self.broker.publish(reply)
        }
        return await mainDone && replyDone
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
    static let replyCopyAttempts = 5

    private func untilConfirmed(log: Logger, maxTransientFailures: Int? = nil, _ publish: () async throws(PublishFailure) -> Void) async -> Bool {
        var delay = Duration.milliseconds(100)
        var failures = 0
        while true {
            do throws(PublishFailure) {
                try await publish()
                return true
            } catch {
                switch error {
                case .unroutable(let reason):
                    log.warning("outcome copy to reply_to could not be routed", metadata: ["reason": "\(reason)"])
                    return true
                case .transient(let reason):
                    failures += 1
                    if let maxTransientFailures, failures >= maxTransientFailures {
                        log.warning("outcome copy to reply_to refused repeatedly; giving up on the copy", metadata: ["reason": "\(reason)"])
                        return true
                    }
                    metrics.publishRetries.add(1, ordering: .relaxed)
                    log.debug("publish failed; retrying", metadata: ["reason": "\(reason)"])
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

    /// A W3C traceparent, passed on only when well-formed (no header injection).
    static func traceparent(_ headers: [String: String]) -> String? {
        guard let value = headers["traceparent"] else { return nil }
        let bytes = Array(value.utf8)
        guard bytes.count == 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        for (i, b) in bytes.enumerated() where i != 2 && i != 35 && i != 52 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b) else { return nil }
        }
        // Version ff is invalid, and so are all-zero trace and parent ids.
        if value.hasPrefix("ff") || bytes[3..<35].allSatisfy({ $0 == UInt8(ascii: "0") }) || bytes[36..<52].allSatisfy({ $0 == UInt8(ascii: "0") }) {
            return nil
        }
        return value
    }
}

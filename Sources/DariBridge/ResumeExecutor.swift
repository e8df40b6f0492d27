#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tracing

/// Sends one resume request to Dari with retries: the classification and
/// backoff of the contract, `Retry-After` first. Time and randomness are
/// injected so tests never sleep through a backoff.
package struct ResumeExecutor: Sendable {
    package struct Result: Sendable, Equatable {
        package enum Kind: Sendable, Equatable {
            case succeeded
            case dariError       // a final non-2xx status
            case retriesExhausted
            /// The transport refused to send (`DariRequestRefused`): final, no retry;
            /// `detail` says why, `attempts` does not count the refused one.
            case refused
            /// The next wait is too long to hold the delivery: hand the message to
            /// a delay queue; `attempts` travel with it.
            case deferred(Duration)
        }
        package var kind: Kind
        package var attempts: Int
        package var httpStatus: Int?
        package var responseJSON: [UInt8]?
        package var detail: String?
    }

    package var transport: any DariTransport
    package var policy: RetryPolicy
    package var requestTimeout: Duration
    /// A single retry wait longer than this is not held in memory (the delivery
    /// stays unacked meanwhile): the message goes to a delay queue instead.
    package var maxInMemoryWait: Duration = .seconds(30)
    /// Nor is a delivery held longer than this in all.
    package var maxHold: Duration = .seconds(600)
    package var sleep: @Sendable (Duration) async throws -> Void
    package var randomUnit: @Sendable () -> Double
    package var now: @Sendable () -> Date
    /// Spans for the message, each attempt and the outcome publish (MessageTracing.swift);
    /// nil: none, the incoming trace context is passed on as it came.
    package var tracer: (any Tracer)? = nil
    /// Where each HTTP attempt's duration and status class go (nil: nowhere);
    /// `ResumePipeline` sets its own when nil.
    package var metrics: PipelineMetrics?

    package init(transport: any DariTransport, policy: RetryPolicy, requestTimeout: Duration,
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                randomUnit: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.transport = transport
        self.policy = policy
        self.requestTimeout = requestTimeout
        self.sleep = sleep
        self.randomUnit = randomUnit
        self.now = now
    }

    /// Throws only `CancellationError` (shutdown past the drain deadline).
    /// `priorAttempts`: attempts made before this delivery (from the delay queue).
    /// `heldSince`: when the delivery arrived (it may have waited for a slot):
    /// the hold bound counts from there.
    /// `traceHeaders`: what an untraced worker sends on (`MessageTracing.passThrough`);
    /// with a tracer, each attempt sends what the tracer injects for its span instead.
    package func execute(_ request: ResumeRequest, traceHeaders: TraceHeaders = [:], priorAttempts: Int = 0,
                        heldSince: ContinuousClock.Instant = .now) async throws -> Result {
        let body = request.httpBody()
        // Bounded whatever the header said (the pipeline clamps it too): no
        // arithmetic on an untrusted number without bounds.
        var attempt = min(max(0, priorAttempts), policy.maxAttempts)
        if attempt >= policy.maxAttempts {
            return Result(kind: .retriesExhausted, attempts: attempt, httpStatus: nil, responseJSON: nil,
                          detail: "no attempts left: \(attempt) already made")
        }
        let started = min(heldSince, ContinuousClock.now)
        while true {
            attempt += 1
            var retryAfter: Duration? = nil
            var lastStatus: Int? = nil
            var reason: String
            let attemptStarted = ContinuousClock.now
            do {
                let response = try await post(request, body, traceHeaders, attempt: attempt)
                metrics?.recordAttempt(status: response.status, duration: ContinuousClock.now - attemptStarted)
                lastStatus = response.status
                if (200..<300).contains(response.status) {
                    let json = JSONScanner.isValid(response.body) && !response.body.isEmpty ? response.body : nil
                    return Result(kind: .succeeded, attempts: attempt, httpStatus: response.status, responseJSON: json, detail: nil)
                }
                let detail = DariErrorBody.detail(fromBody: response.body, status: response.status)
                guard RetryPolicy.isRetryable(status: response.status) else {
                    return Result(kind: .dariError, attempts: attempt, httpStatus: response.status, responseJSON: nil, detail: detail)
                }
                reason = detail
                retryAfter = response.retryAfter.flatMap { RetryAfter.parse($0, now: now()) }
            } catch is CancellationError {
                throw CancellationError()
            } catch let refused as DariRequestRefused {
                return Result(kind: .refused, attempts: attempt - 1, httpStatus: nil, responseJSON: nil, detail: refused.reason)
            } catch {
                // Sent (or tried) and failed: no status.
                metrics?.recordAttempt(status: nil, duration: ContinuousClock.now - attemptStarted)
                reason = (error as? DariTransportError)?.reason ?? "\(error)"
            }
            guard policy.mayRetry(afterAttempt: attempt) else {
                return Result(kind: .retriesExhausted, attempts: attempt, httpStatus: lastStatus, responseJSON: nil,
                              detail: "gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"): \(reason)")
            }
            try Task.checkCancellation()
            let delay = policy.delay(afterAttempt: attempt, retryAfter: retryAfter, randomUnit: randomUnit)
            if delay > maxInMemoryWait || (ContinuousClock.now - started) + delay > maxHold {
                return Result(kind: .deferred(delay), attempts: attempt, httpStatus: lastStatus, responseJSON: nil, detail: reason)
            }
            try await sleep(delay)
        }
    }

    /// One attempt, in a `client` span when there is a tracer.
    private func post(_ request: ResumeRequest, _ body: [UInt8], _ traceHeaders: TraceHeaders, attempt: Int) async throws -> DariResponse {
        guard let tracer else {
            return try await Self.send(transport, request, body, traceHeaders, requestTimeout)
        }
        return try await Self.tracedPost(tracer, transport, request, body, attempt: attempt, timeout: requestTimeout)
    }

    /// With the pipeline's approval when there is one (no second approval of the URL).
    private static func send(_ transport: any DariTransport, _ request: ResumeRequest, _ body: [UInt8], _ headers: TraceHeaders,
                             _ timeout: Duration) async throws -> DariResponse {
        if let approved = request.approved {
            return try await transport.post(approved: approved, url: request.resumeURL, body: body, traceHeaders: headers, timeout: timeout)
        }
        return try await transport.post(url: request.resumeURL, body: body, traceHeaders: headers, timeout: timeout)
    }

    private static func tracedPost<T: Tracer>(_ tracer: T, _ transport: any DariTransport, _ request: ResumeRequest, _ body: [UInt8],
                                              attempt: Int, timeout: Duration) async throws -> DariResponse {
        try await MessageTracing.inSpan(tracer, "POST resume", kind: .client) { span, headers in
            span.attributes["http.request.method"] = "POST"
            span.attributes["dari_bridge.attempt"] = attempt
            let response = try await send(transport, request, body, headers, timeout)
            span.attributes["http.response.status_code"] = response.status
            if !(200..<300).contains(response.status) { span.setStatus(SpanStatus(code: .error)) }
            return response
        }
    }
}

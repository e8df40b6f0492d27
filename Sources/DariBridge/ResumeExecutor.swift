#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sends one resume request to Dari with retries: the classification and
/// backoff of the contract, `Retry-After` first. Time and randomness are
/// injected so tests never sleep through a backoff.
public struct ResumeExecutor: Sendable {
    public struct Result: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
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
        public var kind: Kind
        public var attempts: Int
        public var httpStatus: Int?
        public var responseJSON: [UInt8]?
        public var detail: String?
    }

    public var transport: any DariTransport
    public var policy: RetryPolicy
    public var requestTimeout: Duration
    /// A single retry wait longer than this is not held in memory (the delivery
    /// stays unacked meanwhile): the message goes to a delay queue instead.
    public var maxInMemoryWait: Duration = .seconds(30)
    /// Nor is a delivery held longer than this in all.
    public var maxHold: Duration = .seconds(600)
    public var sleep: @Sendable (Duration) async throws -> Void
    public var randomUnit: @Sendable () -> Double
    public var now: @Sendable () -> Date

    public init(transport: any DariTransport, policy: RetryPolicy, requestTimeout: Duration,
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
    public func execute(_ request: ResumeRequest, traceparent: String?, priorAttempts: Int = 0) async throws -> Result {
        let body = request.httpBody()
        // Bounded whatever the header said (the pipeline clamps it too): no
        // arithmetic on an untrusted number without bounds.
        var attempt = min(max(0, priorAttempts), policy.maxAttempts)
        if attempt >= policy.maxAttempts {
            return Result(kind: .retriesExhausted, attempts: attempt, httpStatus: nil, responseJSON: nil,
                          detail: "no attempts left: \(attempt) already made")
        }
        let started = ContinuousClock.now
        while true {
            attempt += 1
            var retryAfter: Duration? = nil
            var lastStatus: Int? = nil
            var reason: String
            do {
                let response = try await transport.post(url: request.resumeURL, body: body, traceparent: traceparent, timeout: requestTimeout)
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
}

import Metrics
import Synchronization

/// The pipeline's metrics, on swift-metrics: every instrument is made once,
/// here, from the injected `MetricsFactory` (the executable passes swift-prometheus's;
/// tests pass their own; the default is no-op). Names are contract v2's; labels
/// take a handful of fixed values only (never a URL, an id or a status code).
package final class PipelineMetrics: Sendable {
    /// Buckets of both duration histograms: Dari answers in tens to hundreds of
    /// milliseconds; a message with retries and `Retry-After` can take up to the
    /// hold bound (default 600 s, beyond the last bucket: only in +Inf).
    package static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30),
    ]

    package enum Name {
        package static let messages = "dari_bridge_messages_total"
        package static let received = "dari_bridge_deliveries_received_total"
        package static let httpAttempts = "dari_bridge_http_attempts_total"
        package static let httpRequests = "dari_bridge_http_requests_total"
        package static let httpRequestDuration = "dari_bridge_http_request_duration_seconds"
        package static let messageDuration = "dari_bridge_message_duration_seconds"
        package static let republishedFromMemory = "dari_bridge_outcomes_republished_from_memory_total"
        package static let deferred = "dari_bridge_deferred_to_delay_queue_total"
        package static let publishRetries = "dari_bridge_publish_retries_total"
        package static let inFlight = "dari_bridge_in_flight"
        package static let requeued = "dari_bridge_deliveries_requeued_total"
        package static let replyToRefused = "dari_bridge_reply_to_refused_total"
    }

    /// The `status_class` label of `dari_bridge_http_requests_total`.
    package enum StatusClass: String, Sendable, CaseIterable {
        case c2xx = "2xx", c3xx = "3xx", c4xx = "4xx", c5xx = "5xx"
        /// No HTTP status: the connection failed, timed out, or the status was outside 200-599.
        case error
        package init(status: Int?) {
            switch status {
            case .some(200..<300): self = .c2xx
            case .some(300..<400): self = .c3xx
            case .some(400..<500): self = .c4xx
            case .some(500..<600): self = .c5xx
            default: self = .error
            }
        }
        var index: Int {
            switch self {
            case .c2xx: 0
            case .c3xx: 1
            case .c4xx: 2
            case .c5xx: 3
            case .error: 4
            }
        }
    }

    package let factory: any MetricsFactory
    package let received: Counter
    package let succeeded: Counter
    package let invalidMessage: Counter
    package let urlNotAllowed: Counter
    package let dariError: Counter
    package let retriesExhausted: Counter
    package let deliveryLimit: Counter
    /// Outcome copies not sent to a reply_to outside DARI_BRIDGE_ALLOWED_REPLY_TO.
    package let replyToRefused: Counter
    /// Deliveries handed back to the broker unstarted (shutdown).
    package let requeued: Counter
    package let httpAttempts: Counter
    package let republishedFromMemory: Counter
    package let publishRetries: Counter
    package let deferred: Counter
    package let inFlight: Meter
    /// One per `StatusClass`, in `allCases` order.
    package let httpRequests: [Counter]
    /// One HTTP attempt, request sent to response head (or failure).
    package let httpRequestDuration: CoreMetrics.Timer
    /// A delivery's arrival to the ack after its confirmed outcome.
    package let messageDuration: CoreMetrics.Timer

    /// Process state the worker reads for its own logs (not exported).
    package let inFlightNow = Atomic<Int>(0)
    package let receivedNow = Atomic<Int>(0)
    /// Messages given up before their outcome was confirmed (shutdown past the drain deadline): left unacked.
    package let abandoned = Atomic<Int>(0)

    package init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        func outcome(_ value: String) -> Counter { counter(Name.messages, [("outcome", value)]) }
        received = counter(Name.received)
        succeeded = outcome("succeeded")
        invalidMessage = outcome(Outcome.ErrorKind.invalidMessage.rawValue)
        urlNotAllowed = outcome(Outcome.ErrorKind.urlNotAllowed.rawValue)
        dariError = outcome(Outcome.ErrorKind.dariError.rawValue)
        retriesExhausted = outcome(Outcome.ErrorKind.retriesExhausted.rawValue)
        deliveryLimit = outcome(Outcome.ErrorKind.deliveryLimit.rawValue)
        replyToRefused = counter(Name.replyToRefused)
        requeued = counter(Name.requeued)
        httpAttempts = counter(Name.httpAttempts)
        republishedFromMemory = counter(Name.republishedFromMemory)
        publishRetries = counter(Name.publishRetries)
        deferred = counter(Name.deferred)
        inFlight = Meter(label: Name.inFlight, dimensions: [], factory: factory)
        httpRequests = StatusClass.allCases.map { counter(Name.httpRequests, [("status_class", $0.rawValue)]) }
        httpRequestDuration = CoreMetrics.Timer(label: Name.httpRequestDuration, dimensions: [], preferredDisplayUnit: .seconds, factory: factory)
        messageDuration = CoreMetrics.Timer(label: Name.messageDuration, dimensions: [], preferredDisplayUnit: .seconds, factory: factory)
        // A scrape shows every series from the start, at 0.
        inFlight.set(0)
    }

    func count(_ outcome: Outcome) {
        switch outcome.error {
        case nil: succeeded.increment()
        case .invalidMessage: invalidMessage.increment()
        case .urlNotAllowed: urlNotAllowed.increment()
        case .dariError: dariError.increment()
        case .retriesExhausted: retriesExhausted.increment()
        case .deliveryLimit: deliveryLimit.increment()
        }
    }

    func messageStarted() {
        receivedNow.add(1, ordering: .relaxed)
        received.increment()
        inFlightNow.add(1, ordering: .relaxed)
        inFlight.increment()
    }

    func messageEnded() {
        inFlightNow.subtract(1, ordering: .relaxed)
        inFlight.decrement()
    }

    /// One HTTP attempt's answer (`status`) or failure (nil) after `duration`.
    package func recordAttempt(status: Int?, duration: Duration) {
        httpRequests[StatusClass(status: status).index].increment()
        httpRequestDuration.recordNanoseconds(duration.nanoseconds)
    }
}

extension Duration {
    /// Whole nanoseconds, saturating (a Duration's range is wider than Int64's).
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? (seconds < 0 ? .min : .max) : sum
    }
}

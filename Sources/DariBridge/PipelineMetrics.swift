import Synchronization

/// Counters the pipeline keeps; the executable renders them for /metrics.
public final class PipelineMetrics: Sendable {
    public let received = Atomic<Int>(0)
    public let succeeded = Atomic<Int>(0)
    public let invalidMessage = Atomic<Int>(0)
    public let urlNotAllowed = Atomic<Int>(0)
    public let dariError = Atomic<Int>(0)
    public let retriesExhausted = Atomic<Int>(0)
    public let deliveryLimit = Atomic<Int>(0)
    /// Outcome copies not sent to a reply_to outside DARI_BRIDGE_ALLOWED_REPLY_TO.
    public let replyToRefused = Atomic<Int>(0)
    /// Deliveries handed back to the broker unstarted (shutdown).
    public let requeued = Atomic<Int>(0)
    public let httpAttempts = Atomic<Int>(0)
    public let republishedFromMemory = Atomic<Int>(0)
    public let publishRetries = Atomic<Int>(0)
    public let inFlight = Atomic<Int>(0)
    public let deferred = Atomic<Int>(0)
    /// Messages given up before their outcome was confirmed (shutdown past the drain deadline): left unacked.
    public let abandoned = Atomic<Int>(0)

    public init() {}

    func count(_ outcome: Outcome) {
        switch outcome.error {
        case nil: succeeded.add(1, ordering: .relaxed)
        case .invalidMessage: invalidMessage.add(1, ordering: .relaxed)
        case .urlNotAllowed: urlNotAllowed.add(1, ordering: .relaxed)
        case .dariError: dariError.add(1, ordering: .relaxed)
        case .retriesExhausted: retriesExhausted.add(1, ordering: .relaxed)
        case .deliveryLimit: deliveryLimit.add(1, ordering: .relaxed)
        }
    }
}

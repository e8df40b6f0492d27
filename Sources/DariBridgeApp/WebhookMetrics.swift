import CoreMetrics
import DariBridge

/// The receiver's counters, on an injected swift-metrics factory (the
/// process's Prometheus registry in the worker, a test factory in tests;
/// nothing here bootstraps the global system).
package struct WebhookMetrics: Sendable {
    /// Every request to the receiver's port (any path or method).
    let received: Counter
    /// Refused or not stored, by `WebhookRejection` reason (a closed set).
    let rejected: [WebhookRejection: Counter]
    /// Confirmed by the broker.
    let published: Counter
    /// Already stored: answered 2xx, not published again.
    let duplicate: Counter

    package init(factory: any MetricsFactory) {
        received = Counter(label: "dari_bridge_webhooks_received_total", factory: factory)
        var rejected: [WebhookRejection: Counter] = [:]
        for reason in WebhookRejection.allCases {
            rejected[reason] = Counter(label: "dari_bridge_webhooks_rejected_total", dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        self.rejected = rejected
        published = Counter(label: "dari_bridge_webhooks_published_total", factory: factory)
        duplicate = Counter(label: "dari_bridge_webhooks_duplicate_total", factory: factory)
    }

    func reject(_ reason: WebhookRejection) {
        rejected[reason]?.increment()
    }
}

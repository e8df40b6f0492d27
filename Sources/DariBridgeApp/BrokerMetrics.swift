import Metrics

/// The broker adapter's metrics, made once from the injected factory.
/// `dari_bridge_ready` and `dari_bridge_broker_connected{node}` are state:
/// `observe` sets them from the broker just before a scrape.
package final class BrokerMetrics: Sendable {
    let reconnects: Counter
    let acksDropped: Counter
    /// Consumer stalls the watchdog detected.
    let stalls: Counter
    let ready: Gauge
    /// One per configured node (`host:port`): a bounded label.
    let nodes: [(node: String, gauge: Gauge)]

    package init(nodes: [String] = [], factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        reconnects = Counter(label: "dari_bridge_broker_reconnects_total", dimensions: [], factory: factory)
        acksDropped = Counter(label: "dari_bridge_acks_dropped_total", dimensions: [], factory: factory)
        stalls = Counter(label: "dari_bridge_consumer_stalls_total", dimensions: [], factory: factory)
        ready = Gauge(label: "dari_bridge_ready", dimensions: [], factory: factory)
        var seen = Set<String>()
        self.nodes = nodes.filter { seen.insert($0).inserted }.map {
            ($0, Gauge(label: "dari_bridge_broker_connected", dimensions: [("node", $0)], factory: factory))
        }
        observe(ready: false, connectedNode: nil)
    }

    package convenience init(config: Configuration, factory: any MetricsFactory) {
        self.init(nodes: config.amqpURLs.map { "\($0.host):\($0.port)" }, factory: factory)
    }

    /// 1 for the node connected to, 0 for the others.
    package func observe(ready isReady: Bool, connectedNode: String?) {
        ready.record(isReady ? 1 : 0)
        for (node, gauge) in nodes { gauge.record(node == connectedNode ? 1 : 0) }
    }

    package func observe(_ broker: RabbitMQBroker) {
        observe(ready: broker.isReady, connectedNode: broker.connectedNode)
    }
}

import DariBridge
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// /healthz (the process is alive), /readyz (connected, consuming, not
/// blocked by a broker alarm) and /metrics (Prometheus text format).
public final class HealthServer: Service, Sendable {
    let host: String
    let port: Int
    let broker: RabbitMQBroker
    let metrics: PipelineMetrics
    let logger: Logger

    public init(host: String, port: Int, broker: RabbitMQBroker, metrics: PipelineMetrics, logger: Logger) {
        self.host = host
        self.port = port
        self.broker = broker
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        let handlerContext = HealthHandler.Context(broker: broker, metrics: metrics)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HealthHandler(context: handlerContext))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("serving /metrics, /healthz, /readyz", metadata: ["address": "\(host):\(port)"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

final class HealthHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Context: Sendable {
        let broker: RabbitMQBroker
        let metrics: PipelineMetrics
    }

    let context: Context
    var uri = ""
    init(context: Context) { self.context = context }

    func channelRead(context ctx: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): uri = head.uri
        case .body: break
        case .end:
            let (status, body): (HTTPResponseStatus, String) = {
                switch uri.split(separator: "?").first.map(String.init) ?? "" {
                case "/healthz": return (.ok, "ok\n")
                case "/readyz": return context.broker.isReady ? (.ok, "ready\n") : (.serviceUnavailable, "not ready\n")
                case "/metrics": return (.ok, PrometheusText.render(context.metrics, broker: context.broker))
                default: return (.notFound, "not found\n")
                }
            }()
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: uri.hasPrefix("/metrics") ? "text/plain; version=0.0.4" : "text/plain")
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            ctx.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            ctx.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            ctx.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

enum PrometheusText {
    static func render(_ m: PipelineMetrics, broker: RabbitMQBroker) -> String {
        func v(_ a: borrowing Atomic<Int>) -> Int { a.load(ordering: .relaxed) }
        var out = ""
        out += "# HELP dari_bridge_messages_total Input messages that got a confirmed outcome, by outcome.\n"
        out += "# TYPE dari_bridge_messages_total counter\n"
        out += "dari_bridge_messages_total{outcome=\"succeeded\"} \(v(m.succeeded))\n"
        out += "dari_bridge_messages_total{outcome=\"invalid_message\"} \(v(m.invalidMessage))\n"
        out += "dari_bridge_messages_total{outcome=\"url_not_allowed\"} \(v(m.urlNotAllowed))\n"
        out += "dari_bridge_messages_total{outcome=\"dari_error\"} \(v(m.dariError))\n"
        out += "dari_bridge_messages_total{outcome=\"retries_exhausted\"} \(v(m.retriesExhausted))\n"
        out += "dari_bridge_messages_total{outcome=\"delivery_limit\"} \(v(m.deliveryLimit))\n"
        out += "# TYPE dari_bridge_deliveries_received_total counter\n"
        out += "dari_bridge_deliveries_received_total \(v(m.received))\n"
        out += "# TYPE dari_bridge_http_attempts_total counter\n"
        out += "dari_bridge_http_attempts_total \(v(m.httpAttempts))\n"
        out += "# TYPE dari_bridge_outcomes_republished_from_memory_total counter\n"
        out += "dari_bridge_outcomes_republished_from_memory_total \(v(m.republishedFromMemory))\n"
        out += "# TYPE dari_bridge_deferred_to_delay_queue_total counter\n"
        out += "dari_bridge_deferred_to_delay_queue_total \(v(m.deferred))\n"
        out += "# TYPE dari_bridge_publish_retries_total counter\n"
        out += "dari_bridge_publish_retries_total \(v(m.publishRetries))\n"
        out += "# TYPE dari_bridge_in_flight gauge\n"
        out += "dari_bridge_in_flight \(v(m.inFlight))\n"
        out += "# TYPE dari_bridge_broker_reconnects_total counter\n"
        out += "dari_bridge_broker_reconnects_total \(broker.reconnects.load(ordering: .relaxed))\n"
        out += "# TYPE dari_bridge_acks_dropped_total counter\n"
        out += "dari_bridge_acks_dropped_total \(broker.droppedAcks.load(ordering: .relaxed))\n"
        out += "# HELP dari_bridge_broker_connected The broker node the worker is connected to (1), by node (host:port).\n"
        out += "# TYPE dari_bridge_broker_connected gauge\n"
        if let node = broker.connectedNode {
            out += "dari_bridge_broker_connected{node=\"\(node)\"} 1\n"
        }
        out += "# TYPE dari_bridge_deliveries_requeued_total counter\n"
        out += "dari_bridge_deliveries_requeued_total \(v(m.requeued))\n"
        out += "# TYPE dari_bridge_reply_to_refused_total counter\n"
        out += "dari_bridge_reply_to_refused_total \(v(m.replyToRefused))\n"
        out += "# TYPE dari_bridge_ready gauge\n"
        out += "dari_bridge_ready \(broker.isReady ? 1 : 0)\n"
        return out
    }
}

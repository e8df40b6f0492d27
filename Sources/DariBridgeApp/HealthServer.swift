import DariBridge
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// /healthz (the process is alive), /readyz (connected, consuming, not
/// blocked by a broker alarm) and /metrics (Prometheus text of one
/// `PrometheusCollectorRegistry`), on Hummingbird, as a Service.
package final class HealthServer: Service, Sendable {
    /// What one client may cost. Probes and scrapes are small GETs.
    package struct Limits: Sendable {
        /// Connections held at once; a connection beyond is closed on arrival.
        package var maxConnections = 32
        /// A connection with no request in progress for this long is closed;
        /// so is one that stays unwritable (its client does not read) this long.
        package var idleTimeout: Duration = .seconds(10)
        /// One header line (name and value), and all of a request's headers.
        package var maxHeaderFieldBytes = 8 * 1024
        package var maxHeaderBytes = 16 * 1024
        package var maxHeaderCount = 64
        /// A request body past this closes the connection (probes send none).
        package var maxBodyBytes = 4 * 1024
        package init() {}
    }

    let host: String
    let port: Int
    let limits: Limits
    let registry: PrometheusCollectorRegistry
    let isReady: @Sendable () -> Bool
    let beforeScrape: @Sendable () -> Void
    let onListening: @Sendable (Int) async -> Void
    let logger: Logger
    /// Open connections now and refused so far (for tests and logs).
    package let connections: ConnectionCount

    /// - beforeScrape: updates state gauges (readiness, node) just before `/metrics` is rendered.
    /// - onListening: told the bound port once listening (port 0 picks one).
    package init(host: String, port: Int, limits: Limits = Limits(), registry: PrometheusCollectorRegistry,
                isReady: @escaping @Sendable () -> Bool, beforeScrape: @escaping @Sendable () -> Void = {},
                onListening: @escaping @Sendable (Int) async -> Void = { _ in }, logger: Logger) {
        self.host = host
        self.port = port
        self.limits = limits
        self.registry = registry
        self.isReady = isReady
        self.beforeScrape = beforeScrape
        self.onListening = onListening
        self.logger = logger
        self.connections = ConnectionCount(limit: limits.maxConnections)
    }

    package convenience init(host: String, port: Int, limits: Limits = Limits(), broker: RabbitMQBroker, brokerMetrics: BrokerMetrics,
                            registry: PrometheusCollectorRegistry, logger: Logger) {
        self.init(host: host, port: port, limits: limits, registry: registry,
                  isReady: { broker.isReady }, beforeScrape: { brokerMetrics.observe(broker) }, logger: logger)
    }

    package func run() async throws {
        let limits = self.limits
        let connections = self.connections
        let idle = TimeAmount.nanoseconds(limits.idleTimeout.nanoseconds)
        var http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuard(count: connections, maxBodyBytes: limits.maxBodyBytes, stallTimeout: idle)],
            idleTimeout: idle)
        http1.httpDecoder = .init(maxHeaderFieldSize: limits.maxHeaderFieldBytes, maxHeaderListSize: limits.maxHeaderBytes,
                                  maxHeaderFieldCount: limits.maxHeaderCount)
        let (host, port, logger, onListening) = (self.host, self.port, self.logger, self.onListening)
        let app = Hummingbird.Application(
            responder: CallbackResponder<BasicRequestContext>(callback: route),
            server: .http1(configuration: http1),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("serving /metrics, /healthz, /readyz", metadata: [
                    "address": "\(host):\(bound)", "max_connections": "\(limits.maxConnections)", "idle_timeout": "\(limits.idleTimeout)",
                ])
                await onListening(bound)
            },
            logger: logger)
        try await app.run()
    }

    @Sendable func route(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard request.method == .get || request.method == .head else {
            return Self.text(.methodNotAllowed, "method not allowed\n", extra: [.allow: "GET, HEAD"])
        }
        switch request.uri.path {
        case "/healthz": return Self.text(.ok, "ok\n")
        case "/readyz": return isReady() ? Self.text(.ok, "ready\n") : Self.text(.serviceUnavailable, "not ready\n")
        case "/metrics":
            beforeScrape()
            var bytes: [UInt8] = []
            bytes.reserveCapacity(4096)
            registry.emit(into: &bytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        default: return Self.text(.notFound, "not found\n")
        }
    }

    static func text(_ status: HTTPResponse.Status, _ body: String, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "text/plain"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

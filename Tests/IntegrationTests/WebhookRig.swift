import AsyncHTTPClient
import DariBridge
import DariBridgeApp
import Foundation
import Logging
import MetricsTestKit
import NIOCore
import NIOHTTP1
import RabbitMQ
import ServiceLifecycle
import Synchronization

/// The real webhook receiver (Hummingbird on port 0, publishing through a
/// real RabbitMQBroker) and a real HTTP client (AsyncHTTPClient).
final class WebhookRig: Sendable {
    static let secret = "it-webhook-secret"

    let port: Int
    let settings: WebhookSettings
    let metrics: TestMetrics
    let group: ServiceGroup
    let server: Task<Void, Error>
    let http: HTTPClient

    struct Answer: Sendable {
        var status: Int
        var body: String
        var headers: HTTPHeaders
    }

    /// Settings for a test: loopback, port 0, a fresh exchange, the rig's secret.
    static func settings(exchange: String = "it.webhooks.\(UUID().uuidString.prefix(8))", configure: (inout WebhookSettings) -> Void = { _ in }) -> WebhookSettings {
        var s = WebhookSettings()
        // Non-zero: the receiver is on, so the broker declares the exchange at
        // connect. The rig itself binds port 0 (see init).
        s.port = 65_535
        s.host = "127.0.0.1"
        s.secrets = WebhookSecrets([secret])
        s.exchange = exchange
        configure(&s)
        return s
    }

    /// Starts the receiver on `broker` (whose configuration's `webhook` should
    /// be on, so the broker declares the exchange at connect).
    init(settings: WebhookSettings, broker: RabbitMQBroker, logger: Logger? = nil) async throws {
        let metrics = TestMetrics()
        let (ports, portsIn) = AsyncStream<Int>.makeStream()
        var listen = settings
        listen.port = 0
        let logger = logger ?? {
            var l = Logger(label: "webhook-it")
            l.logLevel = .warning
            return l
        }()
        let server = WebhookServer(settings: listen, broker: broker, metrics: WebhookMetrics(factory: metrics), logger: logger,
                                   onListening: { port in portsIn.yield(port); portsIn.finish() })
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        self.group = group
        self.server = Task { try await group.run() }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next() else { throw HarnessError("the webhook server did not start") }
        self.port = port
        self.settings = settings
        self.metrics = metrics
        http = HTTPClient.shared  // needs no shutdown: a test that throws cannot leave one behind
    }

    /// Graceful shutdown, as at SIGTERM.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await server.value
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// Dari's headers for `body` at `timestamp` under `secret`.
    static func signedHeaders(body: [UInt8], timestamp: Int64 = now, secret: String = secret, prefix: String = "") -> [(String, String)] {
        let ts = String(timestamp)
        return [("Content-Type", "application/json"), ("X-Webhook-Timestamp", ts),
                ("X-Webhook-Signature", prefix + WebhookSignature.sign(timestamp: ts, body: body, secret: secret))]
    }

    func send(method: HTTPMethod = .POST, path: String? = nil, headers: [(String, String)], body: [UInt8]?) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path ?? settings.path)")
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), body: String(buffer: bytes), headers: response.headers)
    }

    /// A correctly signed POST of `body`.
    func signed(_ body: [UInt8], timestamp: Int64 = now) async throws -> Answer {
        try await send(headers: Self.signedHeaders(body: body, timestamp: timestamp), body: body)
    }

    func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        (try? metrics.expectCounter(label, dimensions))?.totalValue ?? 0
    }
}

/// Collects what reaches a webhook exchange: a server-named queue bound with `#`.
final class WebhookSink: Sendable {
    let connection: AMQPConnection
    let queue: String
    let box = DeliveryBox()
    let task: Task<Void, Never>

    init(url: AMQPURL, exchange: String, options: AMQPConnection.Options = AMQPConnection.Options()) async throws {
        connection = try await AMQPConnection.connect(to: url, options: options)
        try await connection.declareExchange(exchange, type: "topic", durable: true)
        queue = try await connection.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        try await connection.bindQueue(queue, exchange: exchange, routingKey: "#")
        let consumer = try await connection.consume(queue: queue)
        let conn = connection
        let box = self.box
        task = Task {
            do {
                for try await d in consumer.deliveries {
                    box.received.withLock { $0.append(d) }
                    try? conn.ack(deliveryTag: d.deliveryTag)
                }
            } catch {}
        }
    }

    var messages: [AMQPDelivery] { box.received.withLock { $0 } }

    @discardableResult
    func wait(for count: Int, timeout: Duration = .seconds(10)) async -> [AMQPDelivery] {
        let deadline = ContinuousClock.now + timeout
        while messages.count < count && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return messages
    }

    func close() async {
        await connection.close()
        await task.value
    }
}

final class DeliveryBox: Sendable {
    let received = Mutex<[AMQPDelivery]>([])
}

extension Array where Element: Sendable {
    /// The elements as an AsyncSequence (a request body in chunks).
    var async: AsyncStream<Element> {
        let (stream, continuation) = AsyncStream<Element>.makeStream()
        for e in self { continuation.yield(e) }
        continuation.finish()
        return stream
    }
}

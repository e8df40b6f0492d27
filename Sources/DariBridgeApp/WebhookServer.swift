import DariBridge
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// The webhook receiver's HTTP server (Hummingbird), on its own port so that
/// only it is exposed through an ingress; the probe server stays private.
/// HTTP/1.1 with keep-alive, an idle timeout and a bound on open connections.
package struct WebhookServer: Service {
    let settings: WebhookSettings
    let receiver: WebhookReceiver
    let logger: Logger
    let onListening: @Sendable (Int) -> Void

    /// Publishes through `broker` (its current connection, with confirms).
    package init(settings: WebhookSettings, broker: RabbitMQBroker, metrics: WebhookMetrics, logger: Logger,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        let exchange = settings.exchange
        let timeout = Duration.milliseconds(settings.confirmTimeoutMs)
        self.init(settings: settings, receiver: WebhookReceiver(settings: settings, metrics: metrics, logger: logger) {
            webhook throws(WebhookPublishFailure) in
            try await broker.publishWebhook(webhook, exchange: exchange, timeout: timeout)
        }, logger: logger, onListening: onListening)
    }

    package init(settings: WebhookSettings, receiver: WebhookReceiver, logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.settings = settings
        self.receiver = receiver
        self.logger = logger
        self.onListening = onListening
    }

    package func run() async throws {
        let receiver = self.receiver
        let maxBody = settings.maxBodyBytes
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            await Self.respond(to: request, receiver: receiver, maxBody: maxBody)
        }
        var serverLogger = logger
        serverLogger[metadataKey: "server"] = "webhooks"
        let logger = self.logger, settings = self.settings, onListening = self.onListening
        let app = Hummingbird.Application(
            responder: responder,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(settings.idleTimeoutSeconds)))),
            configuration: ApplicationConfiguration(
                address: .hostname(settings.host, port: settings.port),
                backlog: 256,
                availableConnectionsDelegate: MaximumAvailableConnections(settings.maxConnections, logger: serverLogger)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.port
                logger.info("serving webhooks", metadata: ["address": "\(settings.host):\(port)", "path": "\(settings.path)",
                                                           "exchange": "\(settings.exchange)", "secrets": "\(settings.secrets.count)"])
                onListening(port)
            },
            logger: serverLogger)
        try await app.run()
    }

    static func respond(to request: Request, receiver: WebhookReceiver, maxBody: Int) async -> Response {
        let contentLength = request.headers[.contentLength].flatMap { Int($0) }
        if let early = receiver.checkTarget(method: request.method.rawValue, path: request.uri.path, contentLength: contentLength) {
            return response(early, allowPost: early.status == 405)
        }
        var body: [UInt8] = []
        if let contentLength { body.reserveCapacity(contentLength) }
        do {
            for try await chunk in request.body {
                if body.count + chunk.readableBytes > maxBody { return response(receiver.bodyTooLarge()) }
                body.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            // The client went away or sent a broken body: nothing was verified.
            return response(WebhookResponse(status: 400, detail: "the request body could not be read"))
        }
        let answer = await receiver.handle(timestamps: request.headers[values: timestampHeader],
                                           signatures: request.headers[values: signatureHeader], body: body)
        return response(answer)
    }

    static let timestampHeader = HTTPFields.Element.Name("X-Webhook-Timestamp")!
    static let signatureHeader = HTTPFields.Element.Name("X-Webhook-Signature")!

    static func response(_ answer: WebhookResponse, allowPost: Bool = false) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if allowPost { headers[.allow] = "POST" }
        return Response(status: HTTPResponse.Status(code: answer.status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }
}

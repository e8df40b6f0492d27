import AsyncHTTPClient
import DariBridge
import Foundation
import NIOCore
import RabbitMQ
import Testing
import TestSupport

/// The receiver in the built executable: start-up errors, and a webhook
/// through the real process with SIGTERM after it.
@Suite(.serialized) struct WebhookProcessTests {
    @Test func aPortWithoutASecretIsAStartUpErrorNamingTheSetting() async throws {
        let worker = try WorkerProcess(environment: ["DARI_BRIDGE_WEBHOOK_PORT": "18080", "DARI_BRIDGE_HTTP_PORT": "0",
                                                     "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"])
        let status = await worker.waitForExit(timeout: .seconds(20))
        #expect(status == 2)
        let log = worker.log
        #expect(log.contains("invalid DARI_BRIDGE_WEBHOOK_SECRET (--webhook-secret)"), "\(log)")
        #expect(log.split(separator: "\n").count == 1)
        let both = try WorkerProcess(environment: ["DARI_BRIDGE_WEBHOOK_SECRET": "s3cr3t-value", "DARI_BRIDGE_WEBHOOK_SECRET_FILE": "/etc/hostname"])
        #expect(await both.waitForExit(timeout: .seconds(20)) == 2)
        #expect(both.log.contains("DARI_BRIDGE_WEBHOOK_SECRET_FILE"))
        #expect(!both.log.contains("s3cr3t-value"))
    }

    @Test func theExecutableStoresASignedWebhookAndStopsOnSIGTERM() async throws {
        let h = try await Harness()
        let exchange = "it.proc.webhooks.\(UUID().uuidString.prefix(8))"
        let sink = try await WebhookSink(url: h.config.amqpURLs[0], exchange: exchange)
        let port = unusedPort()
        let probePort = unusedPort()
        let worker = try WorkerProcess(environment: WorkerProcess.environment(for: h, extra: [
            "DARI_BRIDGE_WEBHOOK_PORT": "\(port)", "DARI_BRIDGE_WEBHOOK_HOST": "127.0.0.1",
            "DARI_BRIDGE_WEBHOOK_SECRET": "old-secret, \(WebhookRig.secret)", "DARI_BRIDGE_WEBHOOK_EXCHANGE": exchange,
            "DARI_BRIDGE_HTTP_PORT": "\(probePort)", "DARI_BRIDGE_HTTP_HOST": "127.0.0.1",
        ]))
        let http = HTTPClient.shared
        let body = Array(#"{"variables":{"p":1},"resume_workflow_url":"https://api.usedari.com/public/send-user-signal/p1"}"#.utf8)
        var status = 0
        let deadline = ContinuousClock.now + .seconds(30)
        // 503 until the worker is connected; connection refused until it listens.
        while status != 202 && ContinuousClock.now < deadline {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/webhooks/dari")
            request.method = .POST
            for (k, v) in WebhookRig.signedHeaders(body: body) { request.headers.add(name: k, value: v) }
            request.body = .bytes(ByteBuffer(bytes: body))
            if let response = try? await http.execute(request, timeout: .seconds(10)) {
                status = Int(response.status.code)
                _ = try? await response.body.collect(upTo: 1 << 16)
                #expect([202, 503].contains(status))
            }
            if status != 202 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(status == 202, "\(worker.log)")
        let got = await sink.wait(for: 1)
        #expect(got.first?.body == body)
        #expect(got.first?.routingKey == "webhook.wait")
        // The counters are on the worker's /metrics (its Prometheus registry).
        let metrics = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(probePort)/metrics"), timeout: .seconds(10))
        let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
        #expect(text.contains("dari_bridge_webhooks_published_total 1"), "\(text)")
        #expect(text.contains("dari_bridge_webhooks_received_total"))
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit(timeout: .seconds(30)) == 0)
        #expect(worker.log.contains("serving webhooks"))
        #expect(!worker.log.contains(WebhookRig.secret) && !worker.log.contains("old-secret"))
        await sink.close()
        await h.stop()
    }
}

import TestSupport
import DariBridge
import DariBridgeApp
import FakeDari
import Foundation
import RabbitMQ
import Testing

/// The whole "webhook and wait" step over AMQP: a signed webhook in, a
/// service (a test consumer here, the README's Python example in the second
/// test) takes it from the webhook exchange and publishes a resume request,
/// the worker POSTs it to the fake Dari, the outcome arrives on the results
/// exchange.
@Suite(.serialized) struct WebhookLoopTests {
    static func waitStep(_ h: Harness, id: String, variables: String = #"{"amount":42}"#) -> [UInt8] {
        Array(#"{"variables":\#(variables),"live_url":"https://app.usedari.com/live/\#(id)","resume_workflow_url":"\#(h.url(id))"}"#.utf8)
    }

    @Test func signedWebhookToResumeToOutcome() async throws {
        let settings = WebhookRig.settings()
        let h = try await Harness { $0.webhook = settings }
        h.startWorker()
        try await WebhookReceiverTests.waitUntilReady(h.broker)
        let rig = try await WebhookRig(settings: settings, broker: h.broker)

        // The service: consumes webhook.wait, decides, publishes the resume request.
        let service = try await AMQPConnection.connect(to: h.config.amqpURLs[0])
        try await service.declareExchange(settings.exchange, type: "topic", durable: true)
        let inbox = try await service.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        try await service.bindQueue(inbox, exchange: settings.exchange, routingKey: "webhook.wait")
        let consumer = try await service.consume(queue: inbox)
        let requestsQueue = h.config.queue
        let serviceTask = Task {
            for try await d in consumer.deliveries {
                let webhook = try JSONSerialization.jsonObject(with: Data(d.body)) as! [String: Any]
                let url = webhook["resume_workflow_url"] as! String
                let amount = (webhook["variables"] as? [String: Any])?["amount"] as? Int ?? 0
                let decision = amount < 100 ? "approved" : "rejected"
                let body = ResumeRequest.messageBody(resumeURL: url, variablesJSON: Array(#"{"user_response":"\#(decision)"}"#.utf8))
                try await service.publish(exchange: "", routingKey: requestsQueue, body: body,
                                          properties: AMQPProperties(contentType: "application/json", messageId: d.properties.messageId, persistent: true),
                                          mandatory: true)
                try service.ack(deliveryTag: d.deliveryTag)
            }
        }

        let ids = ["loop-a", "loop-b", "loop-c"]
        var deliveryIds: [String: String] = [:]
        var times: [Duration] = []
        for (i, id) in ids.enumerated() {
            let body = Self.waitStep(h, id: id, variables: #"{"amount":\#(i == 2 ? 500 : 42)}"#)
            let ts = WebhookRig.now
            deliveryIds[id] = WebhookSignature.sign(timestamp: String(ts), body: body, secret: WebhookRig.secret)
            let sent = ContinuousClock.now
            let answer = try await rig.signed(body, timestamp: ts)
            #expect(answer.status == 202)
            let outcomes = await h.waitForOutcomes(i + 1, timeout: .seconds(30))
            times.append(ContinuousClock.now - sent)
            #expect(outcomes.count == i + 1)
        }
        print("webhook loop, signed webhook in -> outcome on the results exchange: \(times.map { "\($0.formatted(.units(allowed: [.milliseconds], fractionalPart: .show(length: 1))))" }.joined(separator: ", "))")

        for (i, id) in ids.enumerated() {
            let requests = h.dari.requests(id: id)
            #expect(requests.count == 1)
            let decision = i == 2 ? "rejected" : "approved"
            #expect(requests.first?.bodyString == #"{"variables":{"user_response":"\#(decision)"}}"#)
            let outcome = try #require(h.outcome(for: deliveryIds[id]!))
            #expect(outcome.body?.status == "succeeded")
            #expect(outcome.body?.resume_workflow_url == h.url(id))
            #expect(outcome.routingKey == "resume.succeeded")
        }
        serviceTask.cancel()
        await service.close()
        _ = try? await serviceTask.value
        await rig.stop()
        await h.stop()
    }

    @Test func theReadmesPythonServiceRunsTheLoop() async throws {
        let settings = WebhookRig.settings()
        let h = try await Harness { $0.webhook = settings }
        h.startWorker()
        try await WebhookReceiverTests.waitUntilReady(h.broker)
        let rig = try await WebhookRig(settings: settings, broker: h.broker)
        let serviceQueue = "it.example.\(UUID().uuidString.prefix(8))"
        // The queue the example consumes, declared and bound as it does, so the
        // webhook is routed even before the script has started.
        let admin = try await AMQPConnection.connect(to: h.config.amqpURLs[0])
        try await admin.declareExchange(settings.exchange, type: "topic", durable: true)
        try await admin.declareQueue(serviceQueue, durable: true)
        try await admin.bindQueue(serviceQueue, exchange: settings.exchange, routingKey: "webhook.wait")

        let url = try #require(ProcessInfo.processInfo.environment["DARI_TEST_AMQP_URL"])
        let script = try ChildProcess(script: "webhook-example.sh", environment: [
            "AMQP_URL": url, "DARI_BRIDGE_WEBHOOK_EXCHANGE": settings.exchange, "DARI_BRIDGE_QUEUE": h.config.queue,
            "SERVICE_QUEUE": serviceQueue, "SERVICE_MAX_WEBHOOKS": "1",
        ])
        let body = Self.waitStep(h, id: "python-1", variables: #"{"amount":7,"note":"from the example"}"#)
        let ts = WebhookRig.now
        #expect(try await rig.signed(body, timestamp: ts).status == 202)
        let status = await script.waitForExit(timeout: .seconds(180))
        let output = script.output
        #expect(status == 0, "the example failed:\n\(output)")
        let outcomes = await h.waitForOutcomes(1, timeout: .seconds(30))
        #expect(outcomes.count == 1)
        let messageId = WebhookSignature.sign(timestamp: String(ts), body: body, secret: WebhookRig.secret)
        #expect(h.outcome(for: messageId)?.body?.status == "succeeded")
        // json.dumps' spacing, forwarded value-exact.
        #expect(h.dari.requests(id: "python-1").first?.bodyString == #"{"variables":{"user_response": "approved"}}"#)
        // The example printed the outcome it read from its reply queue.
        #expect(output.contains("outcome: {\"status\":\"succeeded\""), "\(output)")
        _ = try? await admin.deleteQueue(serviceQueue)
        await admin.close()
        await rig.stop()
        await h.stop()
    }
}

/// A project script as a child process, its output captured to a file (SpawnedProcess:
/// not Foundation's Process, whose waitUntilExit was seen to spin forever on a missed exit).
final class ChildProcess: Sendable {
    let process: SpawnedProcess
    let logURL: URL

    init(script: String, environment: [String: String]) throws {
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("\(script)-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process = try SpawnedProcess(executable: "/bin/bash", arguments: [FaultBroker.root.appendingPathComponent("scripts/\(script)").path],
                                     environment: env, outputPath: logURL.path)
    }

    var output: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func waitForExit(timeout: Duration) async -> Int32? {
        await process.waitForExit(timeout: timeout)
    }
}

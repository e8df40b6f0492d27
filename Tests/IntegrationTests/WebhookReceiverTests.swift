import AsyncHTTPClient
import DariBridge
import DariBridgeApp
import Foundation
import NIOCore
import RabbitMQ
import Testing

/// The receiver over real HTTP against the real broker: every verification
/// case with its exact answer, what is published, the body limit, duplicates.
@Suite(.serialized) struct WebhookReceiverTests {
    /// A worker harness with the receiver on, the receiver, and a sink on the webhook exchange.
    static func start() async throws -> (Harness, WebhookRig, WebhookSink) {
        let settings = WebhookRig.settings()
        let h = try await Harness { $0.webhook = settings }
        let sink = try await WebhookSink(url: h.config.amqpURLs[0], exchange: settings.exchange)
        h.startWorker()
        try await waitUntilReady(h.broker)
        let rig = try await WebhookRig(settings: settings, broker: h.broker)
        return (h, rig, sink)
    }

    static func waitUntilReady(_ broker: RabbitMQBroker) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !broker.isReady {
            guard ContinuousClock.now < deadline else { throw HarnessError("the broker did not become ready") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func stop(_ h: Harness, _ rig: WebhookRig, _ sink: WebhookSink) async {
        await rig.stop()
        await sink.close()
        await h.stop()
    }

    @Test func verifiedWebhookIsPublishedByteForByteAndAnswered202() async throws {
        let (h, rig, sink) = try await Self.start()
        // Odd spacing, a 20-digit number, escapes and unicode: the body must arrive as sent.
        let body = Array("{ \"variables\" : {\"n\":12345678901234567890, \"s\":\"h\\u00e9 ü\"},\n \"live_url\":\"https://app.usedari.com/l/1\" }".utf8)
        let ts = WebhookRig.now
        let headers = WebhookRig.signedHeaders(body: body, timestamp: ts)
        let answer = try await rig.send(headers: headers, body: body)
        #expect(answer.status == 202)
        #expect(answer.body == #"{"detail":"accepted"}"#)
        #expect(answer.headers["Content-Type"].first == "application/json")
        let got = await sink.wait(for: 1)
        try #require(got.count == 1)
        let m = got[0]
        #expect(m.body == body)
        #expect(m.routingKey == "webhook.event")
        #expect(m.properties.persistent)
        #expect(m.properties.contentType == "application/json")
        let signature = WebhookSignature.sign(timestamp: String(ts), body: body, secret: WebhookRig.secret)
        #expect(m.properties.messageId == signature)
        #expect(m.properties.headers["x-dari-webhook-id"]?.stringValue == signature)
        #expect(m.properties.headers["x-dari-webhook-timestamp"]?.integerValue == ts)
        #expect(rig.counter("dari_bridge_webhooks_received_total") == 1)
        #expect(rig.counter("dari_bridge_webhooks_published_total") == 1)
        await Self.stop(h, rig, sink)
    }

    @Test func waitStepsAndEventsGetTheirRoutingKeys() async throws {
        let (h, rig, sink) = try await Self.start()
        let wait = Array(#"{"variables":{"a":1},"live_url":"https://app.usedari.com/l/2","resume_workflow_url":"https://api.usedari.com/public/send-user-signal/s1"}"#.utf8)
        let event = Array(#"{"variables":{"a":2},"live_url":"https://app.usedari.com/l/3"}"#.utf8)
        #expect(try await rig.signed(wait).status == 202)
        // The prefix form, upper-case hex.
        let ts = String(WebhookRig.now)
        let sig = "sha256=" + WebhookSignature.sign(timestamp: ts, body: event, secret: WebhookRig.secret).uppercased()
        #expect(try await rig.send(headers: [("X-Webhook-Timestamp", ts), ("X-Webhook-Signature", sig)], body: event).status == 202)
        let got = await sink.wait(for: 2)
        #expect(got.map(\.routingKey) == ["webhook.wait", "webhook.event"])
        #expect(got.map(\.body) == [wait, event])
        await Self.stop(h, rig, sink)
    }

    @Test func everyRefusalHasItsStatusAndBodyAndNothingIsPublished() async throws {
        let (h, rig, sink) = try await Self.start()
        let body = Array(#"{"variables":{},"live_url":"https://app.usedari.com/l/4"}"#.utf8)
        let now = WebhookRig.now
        let ts = String(now)
        let good = WebhookSignature.sign(timestamp: ts, body: body, secret: WebhookRig.secret)
        var wrong = Array(good)
        wrong[0] = wrong[0] == "a" ? "b" : "a"
        let notObject = Array("[1,2]".utf8)
        struct Case { var name: String; var method = "POST"; var path: String? = nil; var headers: [(String, String)]; var body: [UInt8]?; var status: Int; var detail: String; var reason: String }
        let cases: [Case] = [
            Case(name: "no signature", headers: [("X-Webhook-Timestamp", ts)], body: body, status: 401, detail: "missing X-Webhook-Signature", reason: "missing_signature"),
            Case(name: "no timestamp", headers: [("X-Webhook-Signature", good)], body: body, status: 401, detail: "missing X-Webhook-Timestamp", reason: "missing_timestamp"),
            Case(name: "no headers", headers: [], body: body, status: 401, detail: "missing X-Webhook-Timestamp", reason: "missing_timestamp"),
            Case(name: "wrong signature", headers: [("X-Webhook-Timestamp", ts), ("X-Webhook-Signature", String(wrong))], body: body,
                 status: 401, detail: "signature does not match", reason: "bad_signature"),
            Case(name: "signed with another secret", headers: WebhookRig.signedHeaders(body: body, timestamp: now, secret: "not-ours"), body: body,
                 status: 401, detail: "signature does not match", reason: "bad_signature"),
            Case(name: "body changed", headers: [("X-Webhook-Timestamp", ts), ("X-Webhook-Signature", good)], body: body + [0x20],
                 status: 401, detail: "signature does not match", reason: "bad_signature"),
            Case(name: "not hex", headers: [("X-Webhook-Timestamp", ts), ("X-Webhook-Signature", "sha256=xyz")], body: body,
                 status: 401, detail: "X-Webhook-Signature is not 64 hex digits (optionally after sha256=)", reason: "malformed_signature"),
            Case(name: "stale", headers: WebhookRig.signedHeaders(body: body, timestamp: now - 400), body: body,
                 status: 401, detail: "X-Webhook-Timestamp is more than 300 s old", reason: "stale_timestamp"),
            Case(name: "future", headers: WebhookRig.signedHeaders(body: body, timestamp: now + 400), body: body,  // real clock: a margin for a slow run (the 300 s boundary itself: WebhookVerifierTests)
                 status: 401, detail: "X-Webhook-Timestamp is more than 300 s in the future", reason: "future_timestamp"),
            Case(name: "timestamp not a number", headers: [("X-Webhook-Timestamp", "yesterday"), ("X-Webhook-Signature", good)], body: body,
                 status: 401, detail: "X-Webhook-Timestamp is not Unix seconds", reason: "bad_timestamp"),
            Case(name: "signed, not an object", headers: WebhookRig.signedHeaders(body: notObject, timestamp: now), body: notObject,
                 status: 400, detail: "body is not a JSON object", reason: "not_json_object"),
            Case(name: "signed, empty", headers: WebhookRig.signedHeaders(body: [], timestamp: now), body: nil,
                 status: 400, detail: "body is not a JSON object", reason: "not_json_object"),
            Case(name: "unsigned, not an object", headers: [("X-Webhook-Timestamp", ts)], body: notObject,
                 status: 401, detail: "missing X-Webhook-Signature", reason: "missing_signature"),
            Case(name: "other path", path: "/webhooks/other", headers: WebhookRig.signedHeaders(body: body, timestamp: now), body: body,
                 status: 404, detail: "not found", reason: "not_found"),
            Case(name: "root", path: "/", headers: [], body: nil, status: 404, detail: "not found", reason: "not_found"),
            Case(name: "GET", method: "GET", headers: [], body: nil, status: 405, detail: "method not allowed: use POST", reason: "method_not_allowed"),
            Case(name: "PUT signed", method: "PUT", headers: WebhookRig.signedHeaders(body: body, timestamp: now), body: body,
                 status: 405, detail: "method not allowed: use POST", reason: "method_not_allowed"),
        ]
        for c in cases {
            let a = try await rig.send(method: .init(rawValue: c.method), path: c.path, headers: c.headers, body: c.body)
            #expect(a.status == c.status, "\(c.name)")
            #expect(a.body == #"{"detail":"\#(c.detail)"}"#, "\(c.name)")
            if c.status == 405 { #expect(a.headers["Allow"].first == "POST") }
        }
        var expected: [String: Int64] = [:]
        for c in cases { expected[c.reason, default: 0] += 1 }
        for (reason, n) in expected {
            #expect(rig.counter("dari_bridge_webhooks_rejected_total", [("reason", reason)]) == n, "\(reason)")
        }
        // One good webhook last: the connection publishes in order, so when it is
        // the only message that arrived, none of the refused ones was published.
        #expect(try await rig.send(headers: [("X-Webhook-Timestamp", ts), ("X-Webhook-Signature", good)], body: body).status == 202)
        let got = await sink.wait(for: 1)
        #expect(got.count == 1)
        #expect(got.first?.body == body)
        #expect(rig.counter("dari_bridge_webhooks_published_total") == 1)
        #expect(rig.counter("dari_bridge_webhooks_received_total") == Int64(cases.count + 1))
        await Self.stop(h, rig, sink)
    }

    @Test func bodyLimitIsOneMebibyte() async throws {
        let (h, rig, sink) = try await Self.start()
        func object(size: Int) -> [UInt8] {
            let head = Array(#"{"variables":{},"pad":""#.utf8), tail = Array(#""}"#.utf8)
            return head + [UInt8](repeating: UInt8(ascii: "x"), count: size - head.count - tail.count) + tail
        }
        let atLimit = object(size: 1 << 20)
        #expect(try await rig.signed(atLimit).status == 202)
        let over = object(size: (1 << 20) + 1)
        let a = try await rig.signed(over)
        #expect(a.status == 413)
        #expect(a.body == #"{"detail":"body larger than 1048576 bytes"}"#)
        // Without a Content-Length (chunked): found while reading.
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(rig.port)\(rig.settings.path)")
        request.method = .POST
        for (k, v) in WebhookRig.signedHeaders(body: over) { request.headers.add(name: k, value: v) }
        let chunks = stride(from: 0, to: over.count, by: 64 << 10).map { ByteBuffer(bytes: over[$0..<min(over.count, $0 + (64 << 10))]) }
        request.body = .stream(chunks.async, length: .unknown)
        let chunked = try await rig.http.execute(request, timeout: .seconds(30))
        #expect(chunked.status.code == 413)
        #expect(String(buffer: try await chunked.body.collect(upTo: 1 << 16)) == #"{"detail":"body larger than 1048576 bytes"}"#)
        let got = await sink.wait(for: 1)
        #expect(got.count == 1)
        #expect(got.first?.body.count == 1 << 20)
        #expect(rig.counter("dari_bridge_webhooks_rejected_total", [("reason", "too_large")]) == 2)
        await Self.stop(h, rig, sink)
    }

    @Test func theSameDeliveryTwiceIsPublishedOnce() async throws {
        let (h, rig, sink) = try await Self.start()
        let body = Array(#"{"variables":{"k":"v"},"live_url":"https://app.usedari.com/l/5"}"#.utf8)
        let headers = WebhookRig.signedHeaders(body: body)
        let first = try await rig.send(headers: headers, body: body)
        #expect(first.status == 202)
        let again = try await rig.send(headers: headers, body: body)
        #expect(again.status == 200)
        #expect(again.body == #"{"detail":"duplicate delivery: already accepted"}"#)
        // The same body re-signed at another second is another delivery (Dari's retry of a failed one).
        let later = try await rig.send(headers: WebhookRig.signedHeaders(body: body, timestamp: WebhookRig.now + 1), body: body)
        #expect(later.status == 202)
        // Twenty copies of a new delivery at once: one is published; the others are
        // answered 200 (stored) or 409 (being stored), never a second 202.
        let racing = Array(#"{"variables":{"k":"race"}}"#.utf8)
        let raceHeaders = WebhookRig.signedHeaders(body: racing)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 { group.addTask { try await rig.send(headers: raceHeaders, body: racing).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 202 }.count == 1)
        #expect(statuses.allSatisfy { [200, 202, 409].contains($0) })
        let marker = Array(#"{"variables":{"k":"last"}}"#.utf8)
        #expect(try await rig.signed(marker).status == 202)
        let got = await sink.wait(for: 4)
        #expect(got.map(\.body) == [body, body, racing, marker])
        #expect(rig.counter("dari_bridge_webhooks_duplicate_total") == 1 + Int64(statuses.filter { $0 == 200 }.count))
        await Self.stop(h, rig, sink)
    }

    @Test func aWebhookNoQueueTakesIsNot2xx() async throws {
        let settings = WebhookRig.settings()
        let h = try await Harness { $0.webhook = settings }
        h.startWorker()
        try await Self.waitUntilReady(h.broker)
        let rig = try await WebhookRig(settings: settings, broker: h.broker)
        let body = Array(#"{"variables":{}}"#.utf8)
        let headers = WebhookRig.signedHeaders(body: body)
        let a = try await rig.send(headers: headers, body: body)
        #expect(a.status == 503)
        #expect(a.body == #"{"detail":"no queue is bound to the webhook exchange for this routing key; retry later"}"#)
        #expect(rig.counter("dari_bridge_webhooks_rejected_total", [("reason", "unroutable")]) == 1)
        // Once a queue is bound, Dari's retry of the same delivery is stored.
        let sink = try await WebhookSink(url: h.config.amqpURLs[0], exchange: settings.exchange)
        #expect(try await rig.send(headers: headers, body: body).status == 202)
        #expect(await sink.wait(for: 1).count == 1)
        await Self.stop(h, rig, sink)
    }
}

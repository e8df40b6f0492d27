import DariBridge
import FakeDari
import Foundation
import RabbitMQ
import Testing

/// The worker end to end: real RabbitMQ, real HTTP stack, FakeDari.
@Suite(.serialized) struct WorkerIntegrationTests {
    @Test func fiveHundredMessagesEachGetExactlyOneOutcome() async throws {
        let h = try await Harness(concurrency: 64)
        h.startWorker()
        for i in 0..<500 {
            try await h.publish(id: "m\(i)", variables: #"{"n":\#(i),"big":12345678901234567890}"#, correlationId: "c\(i)")
        }
        let got = await h.waitForOutcomes(500, timeout: .seconds(60))
        try await Task.sleep(for: .milliseconds(300))  // would expose extra outcomes
        let all = h.received
        await h.stop()
        #expect(got.count >= 500)
        #expect(all.count == 500)
        let ids = Set(all.compactMap(\.messageId))
        #expect(ids.count == 500)
        for o in all {
            let b = try #require(o.body)
            #expect(b.status == "succeeded")
            #expect(o.routingKey == "resume.succeeded")
            #expect(b.attempts == 1)
            #expect(b.http_status == 200)
            #expect(b.error == nil)
            #expect(b.correlation_id == "c" + (b.message_id ?? "").dropFirst())
            #expect(o.properties.correlationId == b.correlation_id)
            #expect(o.properties.persistent)
            #expect(o.properties.contentType == "application/json")
            #expect(o.properties.messageId != nil && o.properties.messageId != b.message_id)
            #expect(o.text.contains(#""response":{"ok":true}"#))
        }
        #expect(h.dari.requestCount == 500)
        for i in [0, 137, 499] { #expect(h.dari.requestCount(id: "m\(i)") == 1) }
        let sample = try #require(h.dari.requests(id: "m7").first)
        #expect(String(decoding: sample.body, as: UTF8.self) == #"{"variables":{"n":7,"big":12345678901234567890}}"#)
    }

    @Test func variablesReachDariValueExact() async throws {
        let h = try await Harness()
        h.startWorker()
        let variables = #"{"big":12345678901234567890,"tiny":1e-7,"dec":0.1,"long":3.1415926535897932384626433832795028,"s":"h\u00e9llo \ud83d\ude00 ü","nested":{"b":[1,{"z":null}],"a":true}}"#
        try await h.publish(id: "exact", variables: variables)
        await h.waitForOutcomes(1)
        await h.stop()
        let request = try #require(h.dari.requests(id: "exact").first)
        #expect(Array(request.body) == Array(#"{"variables":"#.utf8) + Array(variables.utf8) + Array("}".utf8))
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.header("Accept") == "application/json")
        #expect(request.header("User-Agent")?.hasPrefix("dari-bridge/") == true)
        #expect(request.header("Authorization") == nil)
        #expect(request.method == "POST")
    }

    @Test func retriesThenSucceeds() async throws {
        let h = try await Harness(maxAttempts: 6)
        h.dari.script(id: "flaky", [FakeDari.Reply(status: 503, body: #"{"detail":"busy"}"#), FakeDari.Reply(status: 503), .ok(#"{"resumed":true}"#)])
        h.startWorker()
        try await h.publish(id: "flaky")
        await h.waitForOutcomes(1)
        await h.stop()
        let o = try #require(h.outcome(for: "flaky")?.body)
        #expect(o.status == "succeeded")
        #expect(o.attempts == 3)
        #expect(o.http_status == 200)
        #expect(h.outcome(for: "flaky")?.text.contains(#""response":{"resumed":true}"#) == true)
        #expect(h.dari.requestCount(id: "flaky") == 3)
    }

    @Test func retryAfterIsHonoured() async throws {
        let h = try await Harness()
        h.dari.script(id: "limited", [FakeDari.Reply(status: 429, headers: [("Retry-After", "1")], body: #"{"detail":"slow down"}"#), .ok()])
        h.startWorker()
        try await h.publish(id: "limited")
        await h.waitForOutcomes(1)
        await h.stop()
        let requests = h.dari.requests(id: "limited")
        #expect(requests.count == 2)
        if requests.count == 2 {
            #expect(requests[1].receivedAt - requests[0].receivedAt >= .seconds(1))
        }
        #expect(h.outcome(for: "limited")?.body?.attempts == 2)
    }

    @Test func finalErrorCarriesDarisDetailVerbatim() async throws {
        let h = try await Harness()
        h.dari.script(id: "gone", [FakeDari.Reply(status: 404, body: #"{"detail":"Signal \"gone\" not found — ü"}"#)])
        h.startWorker()
        try await h.publish(id: "gone")
        await h.waitForOutcomes(1)
        await h.stop()
        let o = try #require(h.outcome(for: "gone"))
        #expect(o.routingKey == "resume.failed")
        #expect(o.body?.status == "failed")
        #expect(o.body?.error == "dari_error")
        #expect(o.body?.detail == #"Signal "gone" not found — ü"#)
        #expect(o.body?.http_status == 404)
        #expect(o.body?.attempts == 1)
        #expect(h.dari.requestCount(id: "gone") == 1)
    }

    @Test func alwaysUnavailableExhaustsRetries() async throws {
        let h = try await Harness(maxAttempts: 3)
        h.dari.script(id: "down", [FakeDari.Reply(status: 503, body: #"{"detail":"maintenance"}"#)])
        h.startWorker()
        try await h.publish(id: "down")
        await h.waitForOutcomes(1)
        await h.stop()
        let o = try #require(h.outcome(for: "down")?.body)
        #expect(o.error == "retries_exhausted")
        #expect(o.attempts == 3)
        #expect(o.http_status == 503)
        #expect(o.detail?.contains("maintenance") == true)
        #expect(h.dari.requestCount(id: "down") == 3)
    }

    @Test func malformedMessagesGetInvalidMessageAndTheWorkerGoesOn() async throws {
        let h = try await Harness { $0.maxMessageBytes = 4096 }
        h.startWorker()
        let bad: [(String, [UInt8])] = [
            ("not-json", Array("hello".utf8)),
            ("empty", []),
            ("truncated", Array(#"{"resume_workflow_url":"x","variables":{"#.utf8)),
            ("array", Array("[1,2]".utf8)),
            ("no-url", Array(#"{"variables":{}}"#.utf8)),
            ("url-number", Array(#"{"resume_workflow_url":5,"variables":{}}"#.utf8)),
            ("no-variables", Array(#"{"resume_workflow_url":"\#(h.url("x"))"}"#.utf8)),
            ("variables-array", Array(#"{"resume_workflow_url":"\#(h.url("x"))","variables":[1]}"#.utf8)),
            ("bad-utf8", Array(#"{"resume_workflow_url":"\#(h.url("x"))","variables":{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}}"#.utf8)),
            ("huge", ResumeRequest.messageBody(resumeURL: h.url("x"), variablesJSON: Array((#"{"pad":""# + String(repeating: "a", count: 10_000) + #""}"#).utf8))),
            ("deep", Array((#"{"resume_workflow_url":"\#(h.url("x"))","variables":"# + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}").utf8)),
        ]
        for (id, body) in bad { try await h.publish(body: body, messageId: id) }
        try await h.publish(id: "good-after")
        await h.waitForOutcomes(bad.count + 1)
        await h.stop()
        for (id, _) in bad {
            let o = h.outcome(for: id)
            #expect(o?.body?.error == "invalid_message", "\(id)")
            #expect(o?.body?.attempts == 0, "\(id)")
            #expect((o?.body?.detail ?? "").count > 5, "\(id)")
            #expect(o?.routingKey == "resume.failed", "\(id)")
        }
        #expect(h.outcome(for: "huge")?.body?.detail?.contains("limit") == true)
        #expect(h.outcome(for: "no-variables")?.body?.resume_workflow_url == h.url("x"))
        #expect(h.outcome(for: "good-after")?.body?.status == "succeeded")
        #expect(h.dari.requestCount == 1)
        // Nothing left on the queue: every bad message was acked, not requeued.
        let check = try await AMQPConnection.connect(to: h.config.amqpURL)
        #expect(try await check.declareQueue(h.config.queue, durable: true).messageCount == 0)
        try await check.deleteQueue(h.config.queue)
        await check.close()
    }

    @Test func disallowedURLsAreRefusedWithoutARequest() async throws {
        let h = try await Harness()
        h.startWorker()
        let port = h.dari.port
        let urls = [
            "https://evil.example/public/send-user-signal/a",
            "http://127.0.0.1:\(port)/admin/delete",
            "http://user:pw@127.0.0.1:\(port)/public/send-user-signal/a",
            "http://127.0.0.1:\(port)@evil.example/public/send-user-signal/a",
            "http://localhost:\(port)/public/send-user-signal/a",
            "http://127.0.0.1:\(port)/public/send-user-signal/../../admin",
            "file:///etc/passwd",
        ]
        for (i, u) in urls.enumerated() {
            try await h.publish(body: ResumeRequest.messageBody(resumeURL: u, variablesJSON: Array("{}".utf8)), messageId: "u\(i)")
        }
        await h.waitForOutcomes(urls.count)
        await h.stop()
        for i in urls.indices {
            #expect(h.outcome(for: "u\(i)")?.body?.error == "url_not_allowed", "\(urls[i])")
            #expect(h.outcome(for: "u\(i)")?.body?.attempts == 0)
        }
        #expect(h.dari.requestCount == 0)
    }

    @Test func oneSlowMessageDoesNotHoldUpTheOthers() async throws {
        let h = try await Harness(concurrency: 16)
        h.dari.script(id: "slow", [FakeDari.Reply(status: 200, body: #"{"slow":true}"#, delay: .seconds(4))])
        h.startWorker()
        try await h.publish(id: "slow")
        try await Task.sleep(for: .milliseconds(100))
        for i in 0..<100 { try await h.publish(id: "quick\(i)") }
        let got = await h.waitForOutcomes(101, timeout: .seconds(30))
        await h.stop()
        #expect(got.count == 101)
        let slowIndex = got.firstIndex { $0.messageId == "slow" }
        #expect(slowIndex == 100, "the slow message's outcome should come last")
    }

    @Test func replyToGetsItsCopyAndTraceparentIsForwarded() async throws {
        let h = try await Harness()
        let replyQueue = try await h.observer.declareQueue("", durable: false, exclusive: false, autoDelete: false).name
        h.startWorker()
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        try await h.publish(id: "with-reply", correlationId: "corr-1", replyTo: replyQueue, headers: ["traceparent": .string(trace)])
        await h.waitForOutcomes(1)
        await h.stop()
        let check = try await AMQPConnection.connect(to: h.config.amqpURL)
        let consumer = try await check.consume(queue: replyQueue)
        var copy: AMQPDelivery? = nil
        for try await d in consumer.deliveries { copy = d; break }
        try await check.deleteQueue(replyQueue)
        await check.close()
        let main = try #require(h.outcome(for: "with-reply"))
        #expect(copy.map { $0.body } == main.raw)
        #expect(copy?.properties.correlationId == "corr-1")
        #expect(h.dari.requests(id: "with-reply").first?.header("traceparent") == trace)
        // With no tracer configured the context also rides on the outcome (both copies).
        #expect(copy?.properties.headers["traceparent"]?.stringValue == trace)
    }
}

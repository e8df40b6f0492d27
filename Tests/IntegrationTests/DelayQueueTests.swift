import DariBridge
import FakeDari
import Foundation
import RabbitMQ
import Testing

/// Long waits leave memory: a delay queue holds the message and the attempt
/// count travels in its header.
@Suite(.serialized) struct DelayQueueTests {
    @Test func longRetryAfterMovesTheMessageToADelayQueue() async throws {
        let h = try await Harness(maxAttempts: 4) { $0.maxInMemoryWaitMs = 500; $0.maxRetryAfterMs = 10_000 }
        h.dari.script(id: "later", [FakeDari.Reply(status: 503, headers: [("Retry-After", "2")], body: #"{"detail":"come back later"}"#), .ok(#"{"resumed":true}"#)])
        h.startWorker()
        try await h.publish(id: "later", correlationId: "corr-later")
        let got = await h.waitForOutcomes(1, timeout: .seconds(20))
        await h.stop()
        let requests = h.dari.requests(id: "later")
        #expect(requests.count == 2)
        if requests.count == 2 {
            #expect(requests[1].receivedAt - requests[0].receivedAt >= .seconds(2))
        }
        let o = try #require(got.first?.body)
        #expect(o.status == "succeeded")
        #expect(o.attempts == 2, "the attempt made before the delay queue counts")
        #expect(o.correlation_id == "corr-later")
        #expect(got.count == 1)
        let check = try await AMQPConnection.connect(to: h.config.amqpURL)
        let delay = try await check.declareQueue("\(h.config.queue).delay.2s", durable: true, arguments: [
            "x-message-ttl": .int(2000), "x-dead-letter-exchange": .string(""),
            "x-dead-letter-routing-key": .string(h.config.queue), "x-expires": .int(64_000),
        ])
        #expect(delay.messageCount == 0)
        try await check.deleteQueue(delay.name)
        await check.close()
    }

    /// The hand-off publish carries the message's own headers (here 20 KB, more
    /// than the first encoding buffer of a connection's publish path holds): it
    /// must be sent, not fail the connection (which then failed again on every
    /// redelivery).
    @Test func aMessageWithLargeHeadersGoesThroughTheDelayQueue() async throws {
        let h = try await Harness(maxAttempts: 4) { $0.maxInMemoryWaitMs = 500; $0.maxRetryAfterMs = 10_000 }
        h.dari.script(id: "big-headers", [FakeDari.Reply(status: 503, headers: [("Retry-After", "2")]), .ok(#"{"resumed":true}"#)])
        h.startWorker()
        try await h.publish(body: ResumeRequest.messageBody(resumeURL: h.url("big-headers"), variablesJSON: Array(#"{"n":1}"#.utf8)),
                            messageId: "big-headers", headers: ["padding": .string(String(repeating: "p", count: 20_000))])
        let got = await h.waitForOutcomes(1, timeout: .seconds(20))
        await h.stop()
        #expect(h.dari.requests(id: "big-headers").count == 2)
        let o = try #require(got.first?.body)
        #expect(o.status == "succeeded")
        #expect(o.attempts == 2)
    }

    @Test func attemptCountInTheHeaderIsHonoured() async throws {
        let h = try await Harness(maxAttempts: 3)
        h.dari.script(id: "tired", [FakeDari.Reply(status: 503)])
        h.startWorker()
        let body = ResumeRequest.messageBody(resumeURL: h.url("tired"), variablesJSON: Array("{}".utf8))
        try await h.publish(body: body, messageId: "tired", headers: [attemptsHeader: "2"])
        try await h.publish(body: ResumeRequest.messageBody(resumeURL: h.url("spent"), variablesJSON: Array("{}".utf8)), messageId: "spent", headers: [attemptsHeader: "3"])
        await h.waitForOutcomes(2)
        await h.stop()
        #expect(h.dari.requestCount(id: "tired") == 1)
        #expect(h.outcome(for: "tired")?.body?.attempts == 3)
        #expect(h.outcome(for: "tired")?.body?.error == "retries_exhausted")
        #expect(h.dari.requestCount(id: "spent") == 0)
        #expect(h.outcome(for: "spent")?.body?.error == "retries_exhausted")
    }

    @Test func aDelayQueueDeletedBetweenHandOffsIsDeclaredAgain() async throws {
        let h = try await Harness(maxAttempts: 4) { $0.maxInMemoryWaitMs = 500; $0.maxRetryAfterMs = 10_000 }
        for id in ["first", "second"] {
            h.dari.script(id: id, [FakeDari.Reply(status: 429, headers: [("Retry-After", "1")]), .ok()])
        }
        h.startWorker()
        try await h.publish(id: "first")
        await h.waitForOutcomes(1, timeout: .seconds(20))
        let admin = try await AMQPConnection.connect(to: h.config.amqpURL)
        try await admin.deleteQueue("\(h.config.queue).delay.1s")  // expired or deleted by an operator
        await admin.close()
        try await h.publish(id: "second")
        let got = await h.waitForOutcomes(2, timeout: .seconds(20))
        await h.stop()
        #expect(got.count == 2)
        #expect(h.outcome(for: "second")?.body?.status == "succeeded")
        #expect(h.outcome(for: "second")?.body?.attempts == 2)
        let check = try await AMQPConnection.connect(to: h.config.amqpURL)
        try await check.deleteQueue("\(h.config.queue).delay.1s")
        await check.close()
    }
}

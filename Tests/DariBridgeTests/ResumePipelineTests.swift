import TestSupport
import Foundation
import Logging
import Synchronization
import Testing
@testable import DariBridge

/// Opens once; everyone waiting (and anyone arriving later) goes through.
final class Gate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let passNow: Bool = state.withLock { s in
                if s.isOpen { return true }
                s.waiters.append(continuation)
                return false
            }
            if passNow { continuation.resume() }
        }
    }

    /// Returns true when this call opened the gate (false if it was open already).
    @discardableResult
    func open() -> Bool {
        let (waiters, opened): ([CheckedContinuation<Void, Never>], Bool) = state.withLock { s in
            if s.isOpen { return ([], false) }
            s.isOpen = true
            defer { s.waiters = [] }
            return (s.waiters, true)
        }
        for waiter in waiters { waiter.resume() }
        return opened
    }

    var isOpen: Bool { state.withLock { $0.isOpen } }
}



/// Runs `body`; if it is not done after `seconds`, records an issue and calls `rescue`
/// (which must unblock `body`). A safety net only: never a timing assertion.
private func withSafetyTimeout(seconds: Int = 20, _ what: String, rescue: @escaping @Sendable () -> Void,
                               _ body: () async -> Void) async {
    let watchdog = Task {
        do { try await Task.sleep(for: .seconds(seconds)) } catch { return }
        Issue.record("timed out after \(seconds) s: \(what)")
        rescue()
    }
    await body()
    watchdog.cancel()
}

private let resultsExchange = "test.results"
private let allowedURL = "https://api.usedari.com/public/send-user-signal/abc"
private let validTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

private func body(url: String = allowedURL, variables: String = #"{"approved":true}"#) -> [UInt8] {
    ResumeRequest.messageBody(resumeURL: url, variablesJSON: Array(variables.utf8))
}

private func token(_ tag: UInt64) -> DeliveryToken { DeliveryToken(tag: tag, incarnation: 1) }

private func makePipeline(_ transport: any DariTransport, _ broker: InMemoryBroker, maxMessageBytes: Int = 1 << 20,
                          recent: RecentOutcomes = RecentOutcomes()) -> ResumePipeline {
    let executor = ResumeExecutor(transport: transport, policy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(5),
                                  sleep: SleepRecorder().sleep, randomUnit: { 0.5 })
    let settings = PipelineSettings(
        resultsExchange: resultsExchange, maxMessageBytes: maxMessageBytes,
        urlPolicy: URLPolicy(allowedHosts: URLPolicy.defaultAllowedHosts, allowedPathPrefixes: URLPolicy.defaultAllowedPathPrefixes,
                             allowInsecureHTTP: false))
    return ResumePipeline(settings: settings, executor: executor, broker: broker, recent: recent, metrics: .readable(),
                          logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
}

private func json(_ message: OutgoingMessage) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(message.body))
    return try #require(object as? [String: Any])
}

@Suite("ResumePipeline")
struct ResumePipelineTests {
    @Test func validMessagePublishesSuccessThenAcks() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "msg-1", correlationId: "corr-1", token: token(7)))

        #expect(transport.callCount == 1)
        let events = broker.events
        try #require(events.count == 2, "\(events)")
        guard case .published(let out) = events[0] else { Issue.record("first event is not a publish: \(events)"); return }
        #expect(events[1] == .acked(token(7)))
        #expect(out.exchange == resultsExchange)
        #expect(out.routingKey == "resume.succeeded")
        #expect(out.persistent)
        #expect(!out.mandatory)
        #expect(out.contentType == "application/json")
        #expect(out.correlationId == "corr-1")
        #expect(out.messageId != "msg-1")
        #expect(UUID(uuidString: out.messageId) != nil, "\(out.messageId)")
        let o = try json(out)
        #expect(o["status"] as? String == "succeeded")
        #expect(o["message_id"] as? String == "msg-1")
        #expect(o["correlation_id"] as? String == "corr-1")
        #expect(o["resume_workflow_url"] as? String == allowedURL)
        #expect(o["attempts"] as? Int == 1)
        #expect(o["http_status"] as? Int == 200)
        #expect((o["response"] as? [String: Any])?["ok"] as? Bool == true)
        #expect(o["error"] is NSNull)
        #expect(pipeline.metrics.value(\.succeeded) == 1)
        #expect(pipeline.metrics.value(\.httpAttempts) == 1)
        #expect(pipeline.metrics.inFlightValue == 0)
    }

    @Test func theTransportGetsThePipelinesApprovalOfTheURL() async throws {
        let transport = FunctionTransport()
        let pipeline = makePipeline(transport, InMemoryBroker())
        await pipeline.handle(InboundMessage(body: body(), messageId: "m", token: token(1)))
        let expected = try URLPolicy(allowedHosts: URLPolicy.defaultAllowedHosts, allowedPathPrefixes: URLPolicy.defaultAllowedPathPrefixes,
                                     allowInsecureHTTP: false).approve(allowedURL).get()
        #expect(transport.approved == [expected], "the URL was not handed over with its approval")
        #expect(transport.urls == [allowedURL])
    }

    @Test func eachOutcomeGetsAFreshMessageId() async throws {
        let broker = InMemoryBroker()
        let pipeline = makePipeline(FunctionTransport(), broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "same", token: token(1)))
        await pipeline.handle(InboundMessage(body: body(), messageId: "same", token: token(2)))
        let ids = broker.published.map(\.messageId)
        #expect(ids.count == 2)
        #expect(Set(ids).count == 2)
    }

    @Test func dariErrorIsPublishedAsFailed() async throws {
        let transport = FunctionTransport { _, _, _ in DariResponse(status: 404, body: Array(#"{"detail":"Signal not found"}"#.utf8)) }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), token: token(1)))
        let out = try #require(broker.published.first)
        #expect(out.routingKey == "resume.failed")
        let o = try json(out)
        #expect(o["error"] as? String == "dari_error")
        #expect(o["detail"] as? String == "Signal not found")
        #expect(o["http_status"] as? Int == 404)
        #expect(o["response"] is NSNull)
        #expect(broker.acked == [token(1)])
        #expect(pipeline.metrics.value(\.dariError) == 1)
    }

    @Test func exhaustedRetriesArePublishedAsFailed() async throws {
        let transport = FunctionTransport { _, _, _ in throw DariTransportError(reason: "connection refused") }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), token: token(1)))
        #expect(transport.callCount == 3)
        let o = try json(try #require(broker.published.first))
        #expect(o["error"] as? String == "retries_exhausted")
        #expect(o["attempts"] as? Int == 3)
        #expect(o["http_status"] is NSNull)
        #expect(broker.acked == [token(1)])
        #expect(pipeline.metrics.value(\.httpAttempts) == 3)
    }

    static let invalidMessages: [(name: String, body: String, detail: String)] = [
        ("not JSON", #"{"resume_workflow_url":"#, "not valid JSON"),
        ("not an object", #"[1,2]"#, "must be a JSON object"),
        ("empty", "", "empty"),
        ("missing url", #"{"variables":{"a":1}}"#, "missing field resume_workflow_url"),
        ("missing variables", #"{"resume_workflow_url":"https://api.usedari.com/public/send-user-signal/abc"}"#, "missing field variables"),
        ("variables array", #"{"resume_workflow_url":"https://api.usedari.com/public/send-user-signal/abc","variables":[1]}"#,
         "variables must be a JSON object"),
        ("too big", #"{"resume_workflow_url":"https://api.usedari.com/public/send-user-signal/abc","variables":{"pad":""#
            + String(repeating: "x", count: 300) + #""}}"#, "over the limit of 256"),
    ]

    @Test(arguments: invalidMessages)
    func invalidMessageIsReportedAndAcked(_ testCase: (name: String, body: String, detail: String)) async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker, maxMessageBytes: 256)
        await pipeline.handle(InboundMessage(body: Array(testCase.body.utf8), messageId: "bad-1", correlationId: "c", token: token(3)))

        #expect(transport.callCount == 0, "\(testCase.name)")
        let events = broker.events
        try #require(events.count == 2, "\(testCase.name): \(events)")
        guard case .published(let out) = events[0] else { Issue.record("\(testCase.name): \(events)"); return }
        #expect(events[1] == .acked(token(3)))
        #expect(out.exchange == resultsExchange)
        #expect(out.routingKey == "resume.failed")
        #expect(out.correlationId == "c")
        let o = try json(out)
        #expect(o["status"] as? String == "failed")
        #expect(o["error"] as? String == "invalid_message")
        #expect(o["attempts"] as? Int == 0)
        #expect(o["http_status"] is NSNull)
        #expect(o["message_id"] as? String == "bad-1")
        let detail = try #require(o["detail"] as? String)
        #expect(detail.contains(testCase.detail), "\(testCase.name): \(detail)")
        #expect(pipeline.metrics.value(\.invalidMessage) == 1)
    }

    @Test func invalidMessageKeepsTheReadableURL() async throws {
        let broker = InMemoryBroker()
        let pipeline = makePipeline(FunctionTransport(), broker)
        await pipeline.handle(InboundMessage(body: Array(#"{"resume_workflow_url":"https://x/y","variables":"no"}"#.utf8), token: token(1)))
        let o = try json(try #require(broker.published.first))
        #expect(o["resume_workflow_url"] as? String == "https://x/y")
    }

    @Test(arguments: [
        ("https://evil.example/public/send-user-signal/abc", "evil.example"),
        ("http://api.usedari.com/public/send-user-signal/abc", "scheme http"),
        ("https://api.usedari.com/admin/delete", "/admin/delete"),
        ("https://api.usedari.com@evil.example/public/send-user-signal/abc", "credentials"),
    ])
    func disallowedURLIsRejectedWithoutHTTP(_ url: String, _ fragment: String) async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(url: url), messageId: "m", token: token(5)))
        #expect(transport.callCount == 0)
        let events = broker.events
        try #require(events.count == 2, "\(events)")
        #expect(events[1] == .acked(token(5)))
        let out = try #require(broker.published.first)
        #expect(out.routingKey == "resume.failed")
        let o = try json(out)
        #expect(o["error"] as? String == "url_not_allowed")
        #expect(o["attempts"] as? Int == 0)
        #expect(o["resume_workflow_url"] as? String == url)
        let detail = try #require(o["detail"] as? String)
        #expect(detail.contains(fragment), "\(detail)")
        #expect(pipeline.metrics.value(\.urlNotAllowed) == 1)
    }

    @Test func aRequestTheTransportRefusesIsURLNotAllowedWithoutRetry() async throws {
        let transport = FunctionTransport { _, _, _ in throw DariRequestRefused(reason: "connected address 10.0.0.1 is private 10.0.0.0/8") }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "m", token: token(6)))
        #expect(transport.callCount == 1)
        let out = try #require(broker.published.first)
        #expect(out.routingKey == "resume.failed")
        let o = try json(out)
        #expect(o["error"] as? String == "url_not_allowed")
        #expect(o["attempts"] as? Int == 0)
        #expect(o["http_status"] is NSNull)
        #expect(o["detail"] as? String == "connected address 10.0.0.1 is private 10.0.0.0/8")
        #expect(broker.events.last == .acked(token(6)))
        #expect(pipeline.metrics.value(\.urlNotAllowed) == 1)
    }

    @Test func replyToGetsAMandatoryCopyOfTheSameOutcome() async throws {
        let broker = InMemoryBroker()
        let pipeline = makePipeline(FunctionTransport(), broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "m", correlationId: "corr", replyTo: "amq.gen-reply", token: token(9)))

        let events = broker.events
        try #require(events.count == 3, "\(events)")
        #expect(events[2] == .acked(token(9)))  // after both publishes
        let published = broker.published
        try #require(published.count == 2)
        let main = try #require(published.first { $0.exchange == resultsExchange })
        let reply = try #require(published.first { $0.exchange == "" })
        #expect(main.routingKey == "resume.succeeded")
        #expect(!main.mandatory)
        #expect(reply.routingKey == "amq.gen-reply")
        #expect(reply.mandatory)
        #expect(reply.persistent)
        #expect(reply.correlationId == "corr")
        #expect(reply.body == main.body)
        #expect(reply.messageId != main.messageId)
    }

    @Test func emptyReplyToIsIgnored() async throws {
        let broker = InMemoryBroker()
        let pipeline = makePipeline(FunctionTransport(), broker)
        await pipeline.handle(InboundMessage(body: body(), replyTo: "", token: token(1)))
        #expect(broker.published.count == 1)
        #expect(broker.acked == [token(1)])
    }

    @Test func unroutableReplyToStillAcks() async throws {
        let broker = InMemoryBroker(mandatoryIsUnroutable: true)
        let pipeline = makePipeline(FunctionTransport(), broker)
        await pipeline.handle(InboundMessage(body: body(), replyTo: "gone", token: token(4)))
        let events = broker.events
        #expect(events.last == .acked(token(4)))
        #expect(broker.acked == [token(4)])
        #expect(broker.published.map(\.exchange) == [resultsExchange])
        let replyAttempts = broker.publishAttempts.filter { $0.routingKey == "gone" }
        #expect(replyAttempts.count == 1)  // reported, not retried
        #expect(pipeline.metrics.value(\.publishRetries) == 0)
    }

    @Test func transientPublishFailuresAreRetriedThenAckedOnce() async throws {
        // Note: the pipeline's own publish backoff (100 ms, 200 ms) is real time; it is not injectable.
        let broker = InMemoryBroker(failFirstPublishes: 2)
        let transport = FunctionTransport()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), token: token(11)))
        let events = broker.events
        try #require(events.count == 4, "\(events)")
        guard case .publishFailed(let first, .transient) = events[0], case .publishFailed(let second, .transient) = events[1],
              case .published(let third) = events[2] else {
            Issue.record("unexpected events \(events)")
            return
        }
        #expect(first == second)
        #expect(second == third)  // the same message (same message id) is retried
        #expect(events[3] == .acked(token(11)))
        #expect(broker.acked == [token(11)])
        #expect(transport.callCount == 1)  // publishing again does not POST again
        #expect(pipeline.metrics.value(\.publishRetries) == 2)
    }

    @Test func redeliveryWithKnownOutcomeIsRepublishedWithoutPOST() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "m-1", correlationId: "c", token: token(1)))
        await pipeline.handle(InboundMessage(body: body(), messageId: "m-1", correlationId: "c", redelivered: true, token: token(2)))

        #expect(transport.callCount == 1)
        #expect(pipeline.metrics.value(\.republishedFromMemory) == 1)
        #expect(broker.acked == [token(1), token(2)])
        let published = broker.published
        try #require(published.count == 2)
        #expect(published[0].body == published[1].body)  // the very same outcome
        #expect(published[1].routingKey == "resume.succeeded")
        #expect(published[0].messageId != published[1].messageId)
        #expect(pipeline.metrics.value(\.httpAttempts) == 1)
    }

    @Test func redeliveryWithoutMessageIdIsRecognisedByContent() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), token: token(1)))
        await pipeline.handle(InboundMessage(body: body(), redelivered: true, token: token(2)))
        await pipeline.handle(InboundMessage(body: body(variables: #"{"approved":false}"#), redelivered: true, token: token(3)))
        #expect(transport.callCount == 2)  // the third has different variables
        #expect(pipeline.metrics.value(\.republishedFromMemory) == 1)
        #expect(broker.acked == [token(1), token(2), token(3)])
    }

    @Test func failedOutcomesAreRememberedToo() async throws {
        let transport = FunctionTransport { _, _, _ in DariResponse(status: 410) }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "m", token: token(1)))
        await pipeline.handle(InboundMessage(body: body(), messageId: "m", redelivered: true, token: token(2)))
        #expect(transport.callCount == 1)
        #expect(broker.published.map(\.routingKey) == ["resume.failed", "resume.failed"])
    }

    @Test func nonRedeliveredDuplicatePostsAgain() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "m-1", token: token(1)))
        await pipeline.handle(InboundMessage(body: body(), messageId: "m-1", redelivered: false, token: token(2)))
        #expect(transport.callCount == 2)
        #expect(pipeline.metrics.value(\.republishedFromMemory) == 0)
        #expect(broker.acked == [token(1), token(2)])
    }

    @Test func redeliveryWithUnknownOutcomePosts() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "never-seen", redelivered: true, token: token(1)))
        #expect(transport.callCount == 1)
        #expect(pipeline.metrics.value(\.republishedFromMemory) == 0)
    }

    @Test func validTraceparentIsForwarded() async throws {
        let transport = FunctionTransport()
        let pipeline = makePipeline(transport, InMemoryBroker())
        await pipeline.handle(InboundMessage(body: body(), headers: ["traceparent": validTrace], token: token(1)))
        await pipeline.handle(InboundMessage(body: body(), headers: ["other": "x"], token: token(2)))
        #expect(transport.traceparents == [validTrace, nil])
    }

    static let malformedTraceparents: [String] = [
        "00-xyz",
        "",
        validTrace + "\r\nX-Injected: 1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\r\n",  // same length, CRLF at the end
        "00-4bf92f3577b34da6a3ce929d0e0e4736\r\n0f067aa0ba902b7-01",   // CRLF instead of "-0"
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",   // upper case
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff is invalid
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // all-zero parent id
    ]

    @Test(arguments: malformedTraceparents)
    func malformedTraceparentIsNotForwarded(_ value: String) async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), headers: ["traceparent": value], token: token(1)))
        #expect(transport.callCount == 1)  // still processed
        #expect(transport.traceparents == [nil], "\(value.debugDescription)")
        #expect(broker.acked == [token(1)])
    }

    @Test func traceparentValidation() {
        #expect(ResumePipeline.traceparent(["traceparent": validTrace]) == validTrace)
        #expect(ResumePipeline.traceparent([:]) == nil)
        for bad in Self.malformedTraceparents {
            #expect(ResumePipeline.traceparent(["traceparent": bad]) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func processHandlesFiftyMessagesConcurrently() async throws {
        let total = 50
        let arrived = CallCounter()
        let allArrived = Gate()
        let transport = FunctionTransport { _, _, _ in
            // Every POST waits here until all 50 are in flight at once.
            let count = arrived.increment()
            if count == total { allArrived.open() }
            await allArrived.wait()
            return DariResponse(status: 200, body: Array("{}".utf8))
        }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        let (stream, continuation) = AsyncStream<InboundMessage>.makeStream()
        for i in 0..<total {
            continuation.yield(InboundMessage(body: body(variables: #"{"i":\#(i)}"#), messageId: "m-\(i)", token: token(UInt64(i))))
        }
        continuation.finish()

        await withSafetyTimeout("\(total) POSTs in flight at once", rescue: { allArrived.open() }) {
            await pipeline.process(stream, isStopping: { false })
        }
        #expect(arrived.value == total)
        #expect(Set(broker.acked) == Set((0..<UInt64(total)).map(token)))
        #expect(broker.acked.count == total)
        #expect(broker.published.count == total)
        #expect(broker.published.allSatisfy { $0.routingKey == "resume.succeeded" })
        #expect(pipeline.metrics.value(\.received) == total)
        #expect(pipeline.metrics.inFlightValue == 0)
    }

    @Test func slowMessageDoesNotDelayTheOthers() async throws {
        let fast = 20
        let slowGate = Gate()
        let transport = FunctionTransport { url, _, _ in
            if url.hasSuffix("/slow") { await slowGate.wait() }
            return DariResponse(status: 200, body: Array("{}".utf8))
        }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        let (stream, continuation) = AsyncStream<InboundMessage>.makeStream()
        let slowToken = token(1000)
        continuation.yield(InboundMessage(body: body(url: allowedURL.replacingOccurrences(of: "/abc", with: "/slow")), token: slowToken))
        for i in 0..<fast {
            continuation.yield(InboundMessage(body: body(url: allowedURL.replacingOccurrences(of: "/abc", with: "/fast\(i)")), token: token(UInt64(i))))
        }
        continuation.finish()

        let processing = Task { await pipeline.process(stream, isStopping: { false }) }
        await withSafetyTimeout("\(fast) fast messages acked while the slow one waits", rescue: { slowGate.open() }) {
            await broker.waitForAcks(fast)
        }
        let gateWasClosed = slowGate.open()
        #expect(gateWasClosed, "the fast messages only finished after the slow one was released")
        let ackedBeforeSlow = broker.acked
        #expect(ackedBeforeSlow.count == fast)
        #expect(!ackedBeforeSlow.contains(slowToken))
        await processing.value
        #expect(broker.acked.count == fast + 1)
        #expect(broker.acked.last == slowToken)
    }

    @Test func processSkipsDeliveriesOnceStopping() async throws {
        let transport = FunctionTransport()
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        let (stream, continuation) = AsyncStream<InboundMessage>.makeStream()
        for i in 0..<5 { continuation.yield(InboundMessage(body: body(), token: token(UInt64(i)))) }
        continuation.finish()
        await pipeline.process(stream, isStopping: { true })
        #expect(transport.callCount == 0)
        // Handed back at once (reject with requeue), not held through the drain.
        #expect(broker.events == (0..<5).map { .requeued(token(UInt64($0))) })
    }

    @Test func longWaitIsHandedToTheDelayQueueThenAcked() async throws {
        // Retry-After 120 s, capped at 60 s: longer than the 30 s held in memory.
        let transport = FunctionTransport { _, _, _ in DariResponse(status: 503, retryAfter: "120") }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)
        await pipeline.handle(InboundMessage(body: body(), messageId: "m", token: token(1)))
        #expect(transport.callCount == 1)
        #expect(broker.events == [.deferred(token(1), attempts: 1, delay: .seconds(60)), .acked(token(1))])
        #expect(pipeline.metrics.value(\.deferred) == 1)
    }

    @Test func attemptsHeaderCountsTowardsTheLimit() async throws {
        let transport = FunctionTransport { _, _, _ in DariResponse(status: 503) }
        let broker = InMemoryBroker()
        let pipeline = makePipeline(transport, broker)  // maxAttempts 3
        await pipeline.handle(InboundMessage(body: body(), headers: [attemptsHeader: "2"], token: token(1)))
        #expect(transport.callCount == 1)
        let o = try json(try #require(broker.published.first))
        #expect(o["error"] as? String == "retries_exhausted")
        #expect(o["attempts"] as? Int == 3)
        #expect(pipeline.metrics.value(\.httpAttempts) == 1)
        #expect(broker.acked == [token(1)])
    }

    @Test func cancelledWhileRetryingLeavesTheMessageUnacked() async throws {
        // A cancelled backoff (shutdown past the drain deadline) must neither publish nor ack.
        let entered = Gate()
        let executor = ResumeExecutor(
            transport: FunctionTransport { _, _, _ in DariResponse(status: 503) }, policy: RetryPolicy(maxAttempts: 5),
            requestTimeout: .seconds(1),
            sleep: { _ in
                entered.open()
                try await Task.sleep(for: .seconds(3600))  // ends only by cancellation
            },
            randomUnit: { 0.5 })
        let broker = InMemoryBroker()
        let pipeline = ResumePipeline(
            settings: PipelineSettings(resultsExchange: resultsExchange, maxMessageBytes: 1 << 20,
                                       urlPolicy: URLPolicy(allowedHosts: URLPolicy.defaultAllowedHosts,
                                                            allowedPathPrefixes: URLPolicy.defaultAllowedPathPrefixes,
                                                            allowInsecureHTTP: false)),
            executor: executor, broker: broker, metrics: .readable(), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let task = Task { await pipeline.handle(InboundMessage(body: body(), token: token(1))) }
        await entered.wait()
        task.cancel()
        await task.value
        #expect(broker.events.isEmpty)
        #expect(pipeline.metrics.abandoned.load(ordering: .relaxed) == 1)
        #expect(pipeline.metrics.inFlightValue == 0)
    }
}

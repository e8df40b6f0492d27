import TestSupport
import Foundation
import Logging
import Synchronization
import Testing
@testable import DariBridge

/// Redeliveries in this process never POST twice, and a refused reply_to copy
/// never holds the input forever.
@Suite("Redelivery and reply copies")
struct RedeliveryTests {
    static let url = "https://api.usedari.com/public/send-user-signal/abc"

    func body() -> [UInt8] { ResumeRequest.messageBody(resumeURL: Self.url, variablesJSON: Array(#"{"a":1}"#.utf8)) }

    func pipeline(_ transport: any DariTransport, _ broker: InMemoryBroker, maxInMemoryWait: Duration = .seconds(30)) -> ResumePipeline {
        var executor = ResumeExecutor(transport: transport, policy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(5),
                                      sleep: { _ in }, randomUnit: { 0.5 })
        executor.maxInMemoryWait = maxInMemoryWait
        return ResumePipeline(
            settings: PipelineSettings(resultsExchange: "x", maxMessageBytes: 1 << 20,
                                       urlPolicy: URLPolicy(allowedHosts: ["api.usedari.com"], allowedPathPrefixes: ["/public/send-user-signal/"], allowInsecureHTTP: false)),
            executor: executor, broker: broker, metrics: .readable(), logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    @Test func redeliveryWhileTheOriginalIsInFlightWaitsAndDoesNotPostAgain() async throws {
        let release = Gate()
        let transport = FunctionTransport { _, _, _ in
            await release.wait()
            return DariResponse(status: 200, body: Array(#"{"ok":true}"#.utf8))
        }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker)
        let original = Task { await p.handle(InboundMessage(body: body(), messageId: "m1", token: DeliveryToken(tag: 1, incarnation: 1))) }
        while transport.callCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        // The connection dropped; the broker redelivers on the new channel.
        let redelivery = Task { await p.handle(InboundMessage(body: body(), messageId: "m1", redelivered: true, token: DeliveryToken(tag: 1, incarnation: 2))) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(transport.callCount == 1)
        release.open()
        await original.value
        await redelivery.value
        #expect(transport.callCount == 1, "the redelivery must not POST again")
        let acks = broker.events.compactMap { if case .acked(let t) = $0 { t } else { nil } }
        #expect(Set(acks) == [DeliveryToken(tag: 1, incarnation: 1), DeliveryToken(tag: 1, incarnation: 2)])
        let outcomes = broker.events.compactMap { if case .published(let m) = $0 { m } else { nil } }
        #expect(outcomes.count == 2)
        #expect(outcomes.map(\.body).allSatisfy { $0 == outcomes[0].body })
        #expect(p.metrics.value(\.republishedFromMemory) == 1)
    }

    @Test func redeliveryOfAMessageAlreadyInADelayQueueIsAckedWithoutAPost() async throws {
        let transport = FunctionTransport { _, _, _ in DariResponse(status: 503, body: [], retryAfter: "120") }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, maxInMemoryWait: .seconds(1))
        await p.handle(InboundMessage(body: body(), messageId: "m2", token: DeliveryToken(tag: 1, incarnation: 1)))
        #expect(transport.callCount == 1)
        #expect(broker.events.contains { if case .deferred = $0 { true } else { false } })
        // The ack of the original was lost with its channel: it comes back.
        await p.handle(InboundMessage(body: body(), messageId: "m2", redelivered: true, token: DeliveryToken(tag: 1, incarnation: 2)))
        #expect(transport.callCount == 1, "no second POST: the delayed copy carries the message on")
        #expect(broker.events.last == .acked(DeliveryToken(tag: 1, incarnation: 2)))
        #expect(!broker.events.contains { if case .published = $0 { true } else { false } }, "no outcome yet")
        // The delayed copy itself (not a redelivery) is handled normally.
        await p.handle(InboundMessage(body: body(), messageId: "m2", headers: [attemptsHeader: "1"], token: DeliveryToken(tag: 2, incarnation: 2)))
        #expect(transport.callCount == 2)
    }

    @Test func aReplyCopyTheBrokerKeepsRefusingDoesNotHoldTheInput() async throws {
        let broker = InMemoryBroker(mandatoryAlwaysFails: true)
        let p = pipeline(FunctionTransport(), broker)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await p.handle(InboundMessage(body: body(), messageId: "m3", replyTo: "full-queue", token: DeliveryToken(tag: 9, incarnation: 1))) }
        }
        let failedCopies = broker.events.filter { if case .publishFailed(let m, _) = $0 { m.mandatory } else { false } }
        #expect(failedCopies.count == ResumePipeline.replyCopyAttempts)
        #expect(broker.events.contains(.acked(DeliveryToken(tag: 9, incarnation: 1))))
        #expect(broker.events.contains { if case .published(let m) = $0 { !m.mandatory } else { false } }, "the main outcome is published")
    }
}

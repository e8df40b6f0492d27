import TestSupport
import Foundation
import Logging
import Testing
@testable import DariBridge

/// No path acks a delivery without a confirmed outcome or a confirmed hand-off
/// of that same delivery: a redelivered delayed *copy* is handled, only a
/// redelivery of the handed-off delivery is acked on the strength of the hand-off.
@Suite("Deferred copies")
struct DeferredCopyTests {
    static let url = "https://api.usedari.com/public/send-user-signal/abc"
    func body() -> [UInt8] { ResumeRequest.messageBody(resumeURL: Self.url, variablesJSON: Array(#"{"a":1}"#.utf8)) }

    /// Long waits (over 1 s) go to a delay queue.
    func pipeline(_ transport: any DariTransport, _ broker: InMemoryBroker, maxAttempts: Int) -> ResumePipeline {
        var executor = ResumeExecutor(transport: transport, policy: RetryPolicy(maxAttempts: maxAttempts), requestTimeout: .seconds(5),
                                      sleep: { _ in }, randomUnit: { 0.5 })
        executor.maxInMemoryWait = .seconds(1)
        return ResumePipeline(
            settings: PipelineSettings(resultsExchange: "x", maxMessageBytes: 1 << 20,
                                       urlPolicy: URLPolicy(allowedHosts: ["api.usedari.com"], allowedPathPrefixes: ["/public/send-user-signal/"], allowInsecureHTTP: false)),
            executor: executor, broker: broker, metrics: .readable(), logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    @Test func aRedeliveredDelayedCopyEndsWithAnOutcome() async throws {
        // First POST: 503 with a long Retry-After (deferred); later ones succeed.
        let calls = CallCounter()
        let transport = FunctionTransport { _, _, _ in
            calls.increment() == 1 ? DariResponse(status: 503, retryAfter: "120") : DariResponse(status: 200, body: Array(#"{"ok":true}"#.utf8))
        }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, maxAttempts: 3)

        // 1. The original is handed to a delay queue (confirmed) and acked.
        await p.handle(InboundMessage(body: body(), messageId: "m", token: DeliveryToken(tag: 1, incarnation: 1)))
        #expect(broker.events.contains(.deferred(DeliveryToken(tag: 1, incarnation: 1), attempts: 1, delay: .seconds(60))))
        #expect(broker.acked == [DeliveryToken(tag: 1, incarnation: 1)])
        // 2. The copy comes back from the delay queue; another consumer took it
        //    first and returned it: this worker gets it redelivered.
        await p.handle(InboundMessage(body: body(), messageId: "m", headers: [attemptsHeader: "1"], redelivered: true,
                                      token: DeliveryToken(tag: 7, incarnation: 1)))
        #expect(calls.value == 2, "the copy is POSTed, not acked blindly")
        let outcomes = broker.published.filter { !$0.mandatory }
        #expect(outcomes.count == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(outcomes[0].body)) as? [String: Any])
        #expect(json["status"] as? String == "succeeded")
        #expect(broker.acked.last == DeliveryToken(tag: 7, incarnation: 1))
    }

    @Test func aRedeliveryOfTheHandedOffDeliveryIsStillAckedWithoutAPost() async throws {
        let transport = FunctionTransport { _, _, _ in DariResponse(status: 503, retryAfter: "120") }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, maxAttempts: 5)
        // A copy with 2 attempts is deferred again (now 3); its own redelivery (2) is acked, no POST.
        await p.handle(InboundMessage(body: body(), messageId: "m", headers: [attemptsHeader: "2"], token: DeliveryToken(tag: 1, incarnation: 1)))
        #expect(transport.callCount == 1)
        await p.handle(InboundMessage(body: body(), messageId: "m", headers: [attemptsHeader: "2"], redelivered: true, token: DeliveryToken(tag: 1, incarnation: 2)))
        #expect(transport.callCount == 1)
        #expect(broker.acked.last == DeliveryToken(tag: 1, incarnation: 2))
        // The new copy (3), redelivered, is handled.
        await p.handle(InboundMessage(body: body(), messageId: "m", headers: [attemptsHeader: "3"], redelivered: true, token: DeliveryToken(tag: 2, incarnation: 2)))
        #expect(transport.callCount == 2)
    }
}

import TestSupport
import Foundation
import Logging
import Synchronization
import Testing
@testable import DariBridge

/// Prefetch above the concurrency: at most `concurrency` messages in hand,
/// the surplus waits; at shutdown the waiting ones go back at once.
@Suite("Prefetch above concurrency")
struct PrefetchTests {
    static let url = "https://api.usedari.com/public/send-user-signal/abc"
    func body(_ i: Int) -> [UInt8] { ResumeRequest.messageBody(resumeURL: Self.url + "\(i)", variablesJSON: Array(#"{"a":1}"#.utf8)) }

    final class Peak: Sendable {
        private let s = Mutex((now: 0, peak: 0))
        func enter() { s.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
        func leave() { s.withLock { $0.now -= 1 } }
        var peak: Int { s.withLock { $0.peak } }
    }

    func pipeline(_ transport: any DariTransport, _ broker: InMemoryBroker, concurrency: Int) -> ResumePipeline {
        ResumePipeline(
            settings: PipelineSettings(resultsExchange: "x", maxMessageBytes: 1 << 20,
                                       urlPolicy: URLPolicy(allowedHosts: ["api.usedari.com"], allowedPathPrefixes: ["/public/send-user-signal/"], allowInsecureHTTP: false),
                                       concurrency: concurrency),
            executor: ResumeExecutor(transport: transport, policy: RetryPolicy(maxAttempts: 1), requestTimeout: .seconds(5), sleep: { _ in }),
            broker: broker, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    @Test func noMoreThanTheConcurrencyRunAtOnceAndEveryMessageFinishes() async throws {
        let peak = Peak()
        let transport = FunctionTransport { _, _, _ in
            peak.enter()
            try await Task.sleep(for: .milliseconds(20))
            peak.leave()
            return DariResponse(status: 200)
        }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, concurrency: 3)
        let (stream, continuation) = AsyncStream<InboundMessage>.makeStream()
        for i in 0..<20 { continuation.yield(InboundMessage(body: body(i), token: DeliveryToken(tag: UInt64(i + 1), incarnation: 1))) }
        let done = Task { await p.process(stream, isStopping: { false }) }
        await broker.waitForAcks(20)
        continuation.finish()  // the end of the stream is the shutdown: only then
        await done.value
        #expect(broker.requeued.isEmpty)
        #expect(peak.peak <= 3)
        #expect(peak.peak >= 2, "the slots are used concurrently")
        #expect(transport.callCount == 20)
    }

    @Test func waitingDeliveriesGoBackAtOnceWhenTheStreamEnds() async throws {
        let release = Gate()
        let transport = FunctionTransport { _, _, _ in
            await release.wait()
            return DariResponse(status: 200)
        }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, concurrency: 2)
        let (stream, continuation) = AsyncStream<InboundMessage>.makeStream()
        let done = Task { await p.process(stream, isStopping: { false }) }
        for i in 0..<6 { continuation.yield(InboundMessage(body: body(i), token: DeliveryToken(tag: UInt64(i + 1), incarnation: 1))) }
        while transport.callCount < 2 || p.waitingDeliveries < 4 { try await Task.sleep(for: .milliseconds(5)) }
        continuation.finish()  // shutdown: the broker ends the stream
        while broker.requeued.count < 4 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(Set(broker.requeued.map(\.tag)) == [3, 4, 5, 6], "requeued before the two in hand finished")
        #expect(broker.acked.isEmpty)
        release.open()
        await done.value
        #expect(Set(broker.acked.map(\.tag)) == [1, 2])
        #expect(transport.callCount == 2)
    }

    @Test func aWaitingDeliveryOfADeadChannelIsNotStarted() async throws {
        let release = Gate()
        let transport = FunctionTransport { _, _, _ in
            await release.wait()
            return DariResponse(status: 200)
        }
        let broker = InMemoryBroker()
        let p = pipeline(transport, broker, concurrency: 1)
        let (stream, continuation) = AsyncStream<InboundMessage>.makeStream()
        let done = Task { await p.process(stream, isStopping: { false }) }
        continuation.yield(InboundMessage(body: body(1), token: DeliveryToken(tag: 1, incarnation: 1)))
        continuation.yield(InboundMessage(body: body(2), token: DeliveryToken(tag: 2, incarnation: 1)))
        continuation.yield(InboundMessage(body: body(3), token: DeliveryToken(tag: 1, incarnation: 2)))
        while p.waitingDeliveries < 2 { try await Task.sleep(for: .milliseconds(5)) }
        broker.killIncarnation(1)  // the connection dropped; the broker redelivers tag 2
        release.open()
        continuation.finish()
        await done.value
        #expect(transport.callCount == 2, "message 2 of the dead channel is not POSTed")
        #expect(transport.urls.last == Self.url + "3")
    }
}

/// The hold bound counts from the delivery's arrival, not from when its slot freed.
@Suite("Hold bound from arrival")
struct HoldFromArrivalTests {
    @Test func aDeliveryThatWaitedForASlotIsDeferredSooner() async throws {
        let transport = FunctionTransport { _, _, _ in DariResponse(status: 503) }
        var executor = ResumeExecutor(transport: transport, policy: RetryPolicy(maxAttempts: 6, initialBackoff: .seconds(1), maxBackoff: .seconds(1)),
                                      requestTimeout: .seconds(5), sleep: { _ in }, randomUnit: { 1.0 })
        executor.maxHold = .seconds(60)
        let request = try #require(try? ResumeRequestDecoder.decode(
            ResumeRequest.messageBody(resumeURL: "https://api.usedari.com/public/send-user-signal/a", variablesJSON: Array("{}".utf8)), maxBytes: 1 << 20).get())
        let fresh = try await executor.execute(request)
        #expect(fresh.kind == .retriesExhausted, "a fresh delivery retries in memory")
        let waited = try await executor.execute(request, heldSince: .now - .seconds(59.5))
        guard case .deferred = waited.kind else { Issue.record("expected deferred, got \(waited.kind)"); return }
        #expect(waited.attempts == 1)
    }
}

import TestSupport
import InMemoryTracing
import Logging
import Testing
import Tracing
@testable import DariBridge

private let allowedURL = "https://api.usedari.com/public/send-user-signal/sig-1"
private let validTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

private func pipeline(_ transport: any DariTransport, _ broker: InMemoryBroker, tracer: (any Tracer)?) -> ResumePipeline {
    var executor = ResumeExecutor(transport: transport, policy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(5),
                                  sleep: SleepRecorder().sleep, randomUnit: { 0.5 })
    executor.tracer = tracer
    let settings = PipelineSettings(
        resultsExchange: "results", maxMessageBytes: 1 << 20,
        urlPolicy: URLPolicy(allowedHosts: URLPolicy.defaultAllowedHosts, allowedPathPrefixes: URLPolicy.defaultAllowedPathPrefixes,
                             allowInsecureHTTP: false))
    return ResumePipeline(settings: settings, executor: executor, broker: broker,
                          logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
}

private func message(_ headers: [String: String], url: String = allowedURL) -> InboundMessage {
    InboundMessage(body: ResumeRequest.messageBody(resumeURL: url, variablesJSON: Array(#"{"ok":true}"#.utf8)),
                   messageId: "m-1", headers: headers, token: DeliveryToken(tag: 1, incarnation: 1))
}

/// Attempt 1 answers 503, attempt 2 answers 200.
private func flakyTransport() -> FunctionTransport {
    let calls = CallCounter()
    return FunctionTransport { _, _, _ in
        calls.increment() == 1 ? DariResponse(status: 503, body: Array(#"{"detail":"busy"}"#.utf8))
                               : DariResponse(status: 200, body: Array("{}".utf8))
    }
}

@Suite("Tracing")
struct TracingTests {
    @Test func withoutATracerTheIncomingContextReachesDariAndTheOutcomeUnchanged() async throws {
        let transport = flakyTransport()
        let broker = InMemoryBroker()
        await pipeline(transport, broker, tracer: nil)
            .handle(message(["traceparent": validTrace, "tracestate": "vendor=abc,other=1", "x-other": "kept out"]))
        let expected: TraceHeaders = ["traceparent": validTrace, "tracestate": "vendor=abc,other=1"]
        #expect(transport.traceHeaders == [expected, expected])
        let outcome = try #require(broker.published.first)
        #expect(outcome.headers == expected)
    }

    @Test func withoutATracerAMalformedContextIsNotPassedOn() async throws {
        for headers in [["traceparent": "00-zz-00f067aa0ba902b7-01", "tracestate": "a=b"],
                        ["tracestate": "a=b"],
                        ["traceparent": validTrace + "\r\nX-Injected: 1"]] {
            let transport = FunctionTransport()
            let broker = InMemoryBroker()
            await pipeline(transport, broker, tracer: nil).handle(message(headers))
            #expect(transport.traceHeaders == [[:]], "\(headers)")
            #expect(broker.published.first?.headers == [:], "\(headers)")
        }
        // A tracestate with a control character or over 512 bytes is left out; the traceparent still goes.
        for state in ["a=b\nc", String(repeating: "a", count: 513)] {
            let transport = FunctionTransport()
            await pipeline(transport, InMemoryBroker(), tracer: nil).handle(message(["traceparent": validTrace, "tracestate": state]))
            #expect(transport.traceHeaders == [["traceparent": validTrace]])
        }
    }

    @Test func aMessageIsAConsumerSpanWithAClientSpanPerAttemptAndAProducerSpanForTheOutcome() async throws {
        let tracer = InMemoryTracer()
        let transport = flakyTransport()
        let broker = InMemoryBroker()
        // The publisher's context, as the in-memory tracer writes it into headers.
        let incoming = [InMemoryTracer.traceIDKey: "trace-from-publisher", InMemoryTracer.spanIDKey: "span-of-publisher"]
        await pipeline(transport, broker, tracer: tracer).handle(message(incoming))

        let spans = tracer.finishedSpans
        #expect(spans.count == 4, "\(spans.map(\.operationName))")
        let root = try #require(spans.first { $0.kind == .consumer })
        #expect(root.operationName == "dari-bridge resume request")
        #expect(root.traceID == "trace-from-publisher")
        #expect(root.parentSpanID == "span-of-publisher")
        let attempts = spans.filter { $0.kind == .client }
        #expect(attempts.count == 2)
        for (i, span) in attempts.enumerated() {
            #expect(span.operationName == "POST resume")
            #expect(span.traceID == root.traceID)
            #expect(span.parentSpanID == root.spanID)
            #expect(span.attributes["dari_bridge.attempt"]?.toSpanAttribute() == .int64(Int64(i + 1)))
        }
        #expect(attempts[0].attributes["http.response.status_code"]?.toSpanAttribute() == .int64(503))
        #expect(attempts[0].status?.code == .error)
        #expect(attempts[1].attributes["http.response.status_code"]?.toSpanAttribute() == .int64(200))
        // Each attempt sent its own span's context to Dari, not the publisher's.
        #expect(transport.traceHeaders.map { $0[InMemoryTracer.spanIDKey] } == attempts.map { Optional($0.spanID) })
        #expect(transport.traceHeaders.allSatisfy { $0[InMemoryTracer.traceIDKey] == "trace-from-publisher" })

        let publish = try #require(spans.first { $0.kind == .producer })
        #expect(publish.operationName == "publish outcome")
        #expect(publish.parentSpanID == root.spanID)
        #expect(publish.attributes["dari_bridge.outcome"]?.toSpanAttribute() == .string("succeeded"))
        let outcome = try #require(broker.published.first)
        #expect(outcome.headers == [InMemoryTracer.traceIDKey: "trace-from-publisher", InMemoryTracer.spanIDKey: publish.spanID])
        #expect(broker.acked.count == 1)
    }

    @Test func aRefusedURLHasNoAttemptSpanAndAFailedOutcomeSpan() async throws {
        let tracer = InMemoryTracer()
        let transport = FunctionTransport()
        await pipeline(transport, InMemoryBroker(), tracer: tracer).handle(message([:], url: "https://evil.example/x"))
        let spans = tracer.finishedSpans
        #expect(transport.callCount == 0)
        #expect(spans.map(\.kind).sorted { "\($0)" < "\($1)" } == [.consumer, .producer])
        let publish = try #require(spans.first { $0.kind == .producer })
        #expect(publish.attributes["dari_bridge.outcome"]?.toSpanAttribute() == .string("url_not_allowed"))
        #expect(publish.status?.code == .error)
    }
}

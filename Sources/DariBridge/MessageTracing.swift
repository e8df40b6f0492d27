import Tracing

/// Trace context carried in string headers: AMQP headers in (their text view),
/// HTTP request headers and outcome headers out.
///
/// With a tracer (swift-distributed-tracing, injected into the executor: never
/// the process-wide `InstrumentationSystem`, so tests can run side by side), a
/// message is one `consumer` span, each POST attempt a `client` span inside it
/// and the outcome publish a `producer` span; what the tracer injects goes on
/// the HTTP request and on the outcome. Without one, a well-formed incoming
/// `traceparent` (and its `tracestate`) is passed on unchanged to Dari and onto
/// the outcome, and no span is made (no task-local binding, no allocation).
package typealias TraceHeaders = [String: String]

struct TraceHeadersExtractor: Extractor {
    func extract(key: String, from carrier: TraceHeaders) -> String? { carrier[key] }
}

struct TraceHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout TraceHeaders) { carrier[key] = value }
}

enum MessageTracing {
    /// The trace headers an untraced worker passes on: `traceparent` when it is
    /// well-formed, and then `tracestate` when it is printable ASCII of at most
    /// 512 bytes (W3C: 32 list members; no header injection).
    static func passThrough(_ headers: [String: String]) -> TraceHeaders {
        guard let traceparent = ResumePipeline.traceparent(headers) else { return [:] }
        var out = ["traceparent": traceparent]
        if let state = headers["tracestate"], !state.isEmpty, state.utf8.count <= 512,
           state.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            out["tracestate"] = state
        }
        return out
    }

    /// The context of the incoming message as `tracer` reads it from the headers.
    static func incomingContext<T: Tracer>(_ tracer: T, _ headers: [String: String]) -> ServiceContext {
        var context = ServiceContext.topLevel
        tracer.extract(headers, into: &context, using: TraceHeadersExtractor())
        return context
    }

    /// What `tracer` injects for `context`.
    static func headers<T: Tracer>(_ tracer: T, for context: ServiceContext) -> TraceHeaders {
        var out: TraceHeaders = [:]
        tracer.inject(context, into: &out, using: TraceHeadersInjector())
        return out
    }

    /// Runs `operation` in a span of `kind` under the current context, handing
    /// it the headers to send (what the tracer injects for the new span).
    static func inSpan<T: Tracer, R>(_ tracer: T, _ name: String, kind: SpanKind,
                                     _ operation: (any Span, TraceHeaders) async throws -> R) async rethrows -> R {
        try await tracer.withSpan(name, context: ServiceContext.current ?? .topLevel, ofKind: kind) { span in
            try await operation(span, headers(tracer, for: span.context))
        }
    }
}

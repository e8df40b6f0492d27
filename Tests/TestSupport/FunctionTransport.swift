import Synchronization
import Testing
import DariBridge

/// A transport whose answer is computed by a closure; counts calls and records them.
package final class FunctionTransport: DariTransport {
    package typealias Handler = @Sendable (_ url: String, _ body: [UInt8], _ traceparent: String?) async throws -> DariResponse
    private let handler: Handler
    private let recorded = Mutex<[(url: String, body: [UInt8], traceHeaders: TraceHeaders)]>([])

    package init(_ handler: @escaping Handler = { _, _, _ in DariResponse(status: 200, body: Array(#"{"ok":true}"#.utf8)) }) {
        self.handler = handler
    }

    package func post(url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
        recorded.withLock { $0.append((url, body, traceHeaders)) }
        return try await handler(url, body, traceHeaders["traceparent"])
    }

    /// A POST the pipeline already approved: recorded with its approval, then as any other.
    package func post(approved: ApprovedURL, url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
        approvals.withLock { $0.append(approved) }
        return try await post(url: url, body: body, traceHeaders: traceHeaders, timeout: timeout)
    }

    private let approvals = Mutex<[ApprovedURL]>([])
    /// The approvals that came with the POSTs (`post(approved:...)`), in order.
    package var approved: [ApprovedURL] { approvals.withLock { $0 } }

    package var callCount: Int { recorded.withLock { $0.count } }
    package var traceparents: [String?] { recorded.withLock { $0.map { $0.traceHeaders["traceparent"] } } }
    package var traceHeaders: [TraceHeaders] { recorded.withLock { $0.map(\.traceHeaders) } }
    package var urls: [String] { recorded.withLock { $0.map(\.url) } }
}

/// Counts calls across tasks.
package final class CallCounter: Sendable {
    private let state = Mutex(0)
    package init() {}
    package func increment() -> Int { state.withLock { n in n += 1; return n } }
    package var value: Int { state.withLock { $0 } }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What one HTTP attempt to Dari returned.
package struct DariResponse: Sendable, Equatable {
    package var status: Int
    package var body: [UInt8]
    package var retryAfter: String?

    package init(status: Int, body: [UInt8] = [], retryAfter: String? = nil) {
        self.status = status
        self.body = body
        self.retryAfter = retryAfter
    }
}

/// A transport failure (no HTTP status): connect errors, timeouts, resets.
package struct DariTransportError: Error, Sendable, CustomStringConvertible {
    package var reason: String
    package init(reason: String) { self.reason = reason }
    package var description: String { reason }
}

/// One POST to a resume URL. The real one is `DariClient`; tests may script it.
package protocol DariTransport: Sendable {
    /// `traceHeaders`: the trace context to send (`traceparent`, `tracestate`, or
    /// whatever the configured tracer injects); empty when there is none.
    func post(url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse

    /// The same POST for a URL the pipeline already approved (`approved` is what the
    /// worker's URL policy returned for `url`). The default approves nothing more and calls
    /// `post(url:...)`; `DariClient` sends `approved` as it is.
    func post(approved: ApprovedURL, url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse
}

extension DariTransport {
    package func post(approved: ApprovedURL, url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
        try await post(url: url, body: body, traceHeaders: traceHeaders, timeout: timeout)
    }
}

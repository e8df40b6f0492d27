#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What one HTTP attempt to Dari returned.
public struct DariResponse: Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]
    public var retryAfter: String?

    public init(status: Int, body: [UInt8] = [], retryAfter: String? = nil) {
        self.status = status
        self.body = body
        self.retryAfter = retryAfter
    }
}

/// A transport failure (no HTTP status): connect errors, timeouts, resets.
public struct DariTransportError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One POST to a resume URL. The real one is `DariClient`; tests may script it.
public protocol DariTransport: Sendable {
    /// `traceHeaders`: the trace context to send (`traceparent`, `tracestate`, or
    /// whatever the configured tracer injects); empty when there is none.
    func post(url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse
}

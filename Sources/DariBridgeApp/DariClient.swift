import AsyncHTTPClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOHTTP1

import DariBridge

/// POSTs resume requests with a pooled keep-alive AsyncHTTPClient: redirects
/// are not followed, no API key is sent, one deadline per attempt.
public final class DariClient: DariTransport {
    public static let userAgent = "dari-bridge/\(DariBridgeVersion.current)"
    /// Dari's answers are small; a larger body is cut off and treated as not JSON.
    public static let maxResponseBytes = 1 << 20

    private let client: HTTPClient
    /// Every URL is approved again here, and the request checked against what was approved.
    public let policy: URLPolicy

    public init(concurrency: Int, policy: URLPolicy, connectTimeout: Duration = .seconds(10)) {
        self.policy = policy
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .init(connectTimeout), read: nil)
        configuration.decompression = .disabled
        // One keep-alive connection per message in flight, so the pool never queues.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, concurrency))
        // Our own retry policy decides about a failed connect: AsyncHTTPClient
        // would otherwise keep retrying a refused connect until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .automatic
        // The pipeline makes the attempt's client span itself (MessageTracing.swift). Left at its
        // default, AsyncHTTPClient captures the global tracer (a NoOpTracer) and still starts a
        // span per request, formats its attributes and copies its configuration: about 10,000
        // instructions per message under callgrind for a span nobody records.
        configuration.tracing.tracer = nil
        // The connected address is checked on every new connection, before the pool hands it
        // to a request (DariClient+AddressCheck.swift).
        let check = Self.addressCheck(policy)
        configuration.http1_1ConnectionDebugInitializer = check
        configuration.http2ConnectionDebugInitializer = check
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async throws {
        try await client.shutdown()
    }

    public func post(url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: Self.userAgent)
        // Sorted: the same context gives the same request bytes.
        for (name, value) in traceHeaders.sorted(by: { $0.key < $1.key }) { headers.add(name: name, value: value) }
        let request = try approvedRequest(url: url, headers: headers, body: body)
        // The delegate API, not the async one: the whole answer (head, body, end) is
        // gathered on the connection's event loop and comes back to this task in one
        // hop. The async API resumes the task for the head and again for the body;
        // under load each hop waits for a core (README, Benchmark).
        let task = client.execute(request: request, delegate: ResponseCollector(maxBytes: Self.maxResponseBytes),
                                  deadline: .now() + TimeAmount(timeout))
        do {
            return try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            if let refused = Self.refusal(in: error) { throw refused }
            if let oversized = error as? ResponseCollector.Oversized {
                return DariResponse(status: oversized.status, body: [], retryAfter: oversized.retryAfter)
            }
            throw DariTransportError(reason: Self.describe(error))
        }
    }

    /// Collects status, Retry-After and up to `maxBytes` of body on the event loop.
    /// A larger body is too large to be a Dari answer: the request stops there (the
    /// connection is closed, nothing more is read) and the status is kept, body empty,
    /// so an endless body cannot turn an answer into a timeout and a second POST.
    /// All callbacks run on the task's event loop, one after another.
    final class ResponseCollector: HTTPClientResponseDelegate, @unchecked Sendable {
        typealias Response = DariResponse
        struct Oversized: Error {
            var status: Int
            var retryAfter: String?
        }
        let maxBytes: Int
        private var status = 0
        private var retryAfter: String?
        private var body = ByteBuffer()

        init(maxBytes: Int) { self.maxBytes = maxBytes }

        func didReceiveHead(task: HTTPClient.Task<DariResponse>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
            status = Int(head.status.code)
            retryAfter = head.headers.first(name: "Retry-After")
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveBodyPart(task: HTTPClient.Task<DariResponse>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
            if body.readableBytes + buffer.readableBytes > maxBytes {
                // A failed future makes AsyncHTTPClient cancel the request and fail the task with it.
                return task.eventLoop.makeFailedFuture(Oversized(status: status, retryAfter: retryAfter))
            }
            var buffer = buffer
            body.writeBuffer(&buffer)
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didFinishRequest(task: HTTPClient.Task<DariResponse>) throws -> DariResponse {
            DariResponse(status: status, body: Array(body.readableBytesView), retryAfter: retryAfter)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "request timed out"
            case .connectTimeout: return "connect timed out"
            default: return "HTTP error: \(e)"
            }
        }
        return "connection failed: \(String(describing: error).prefix(200))"
    }
}

public enum DariBridgeVersion {
    public static let current = "0.1.0"
}

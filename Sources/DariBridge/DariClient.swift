import AsyncHTTPClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOHTTP1

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
    func post(url: String, body: [UInt8], traceparent: String?, timeout: Duration) async throws -> DariResponse
}

/// POSTs resume requests with a pooled keep-alive AsyncHTTPClient: redirects
/// are not followed, no API key is sent, one deadline per attempt.
public final class DariClient: DariTransport {
    public static let userAgent = "dari-bridge/\(DariBridgeVersion.current)"
    /// Dari's answers are small; a larger body is cut off and treated as not JSON.
    public static let maxResponseBytes = 1 << 20

    private let client: HTTPClient

    public init(concurrency: Int, connectTimeout: Duration = .seconds(10)) {
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
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async throws {
        try await client.shutdown()
    }

    public func post(url: String, body: [UInt8], traceparent: String?, timeout: Duration) async throws -> DariResponse {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        if let traceparent { request.headers.add(name: "traceparent", value: traceparent) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: TimeAmount(timeout))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw DariTransportError(reason: Self.describe(error))
        }
        var bytes: [UInt8] = []
        do {
            let buffer = try await response.body.collect(upTo: Self.maxResponseBytes)
            bytes = Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            bytes = []  // too large to be a Dari answer: keep the status, drop the body
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw DariTransportError(reason: "reading the response failed: \(Self.describe(error))")
        }
        return DariResponse(status: Int(response.status.code), body: bytes, retryAfter: response.headers.first(name: "Retry-After"))
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

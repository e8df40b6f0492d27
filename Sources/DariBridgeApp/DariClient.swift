import DariBridge
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// POSTs resume requests over pooled keep-alive HTTP/1.1 connections built directly on
/// SwiftNIO (NIOHTTP1's response decoder, NIOSSL for https; the request's bytes are
/// `DariRequestBytes`'): redirects are never followed, no API key
/// or cookie is sent, one deadline per attempt covers connect and answer, answers are bounded.
///
/// The request line and `Host` header are written from what `URLPolicy.approve` returned
/// (`ApprovedURL.requestTarget` and `hostHeader`), byte for byte: there is no second URL
/// parser between the policy and the wire. (With AsyncHTTPClient there was: it re-parsed the
/// URL with Foundation and wrote what that gave, so a check had to compare the two.) README,
/// Benchmark, says why this replaced AsyncHTTPClient.
package final class DariClient: DariTransport {
    package static let userAgent = "dari-bridge/\(DariBridgeVersion.current)"
    /// Dari's answers are small; a larger body is cut off and treated as not JSON.
    package static let maxResponseBytes = 1 << 20

    /// `post(url:)` approves the URL with it; `post(approved:)` takes the pipeline's approval
    /// (made with the same policy). The connected address is checked with it either way.
    package let policy: URLPolicy
    private let pool: DariConnectionPool

    package convenience init(concurrency: Int, policy: URLPolicy, connectTimeout: Duration = .seconds(10)) {
        self.init(concurrency: concurrency, policy: policy, connectTimeout: connectTimeout,
                  tlsConfiguration: .makeClientConfiguration())
    }

    /// `tlsConfiguration`: the system trust roots and full verification unless a test says
    /// otherwise; `idleTimeout`: how long a keep-alive connection may stay unused.
    package init(concurrency: Int, policy: URLPolicy, connectTimeout: Duration, tlsConfiguration: TLSConfiguration,
                 idleTimeout: Duration = .seconds(60)) {
        self.policy = policy
        self.pool = DariConnectionPool(group: MultiThreadedEventLoopGroup.singleton, policy: policy,
                                       maxIdlePerOrigin: concurrency, connectTimeout: TimeAmount(connectTimeout),
                                       maxBodyBytes: Self.maxResponseBytes, tlsConfiguration: tlsConfiguration,
                                       idleTimeout: TimeAmount(idleTimeout))
    }

    package func shutdown() async throws {
        await pool.shutdown()
    }

    package func post(url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
        switch policy.approve(url) {
        case .success(let approved):
            return try await post(approved: approved, url: url, body: body, traceHeaders: traceHeaders, timeout: timeout)
        case .failure(let refusal):
            throw DariRequestRefused(reason: refusal.reason)
        }
    }

    /// `approved`: what the pipeline's check of `url` returned, with the same policy (the
    /// worker builds both from one configuration): not approved again (about 14,000
    /// instructions a message). The connected address is still checked here.
    package func post(approved: ApprovedURL, url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let request = try DariRequestBytes.encode(approved, body: body, traceHeaders: traceHeaders, userAgent: Self.userAgent)
        // The host compared case-insensitively, as DNS does: one pool for every spelling.
        let host = approved.host.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) ? approved.host.lowercased() : approved.host
        let origin = DariConnectionPool.Origin(scheme: approved.scheme, host: host, port: approved.port)
        do {
            // An idle connection the server closed meanwhile is found before a byte is
            // written (Stale): the request goes on the next one, or on a new connection.
            while let idle = pool.takeIdle(origin) {
                do {
                    return try await idle.exchange(request: request, deadline: deadline)
                } catch is DariExchangeHandler.Stale {
                    continue
                }
            }
            do {
                return try await pool.connectAndExchange(origin, request: request, deadline: deadline)
            } catch let stale as DariExchangeHandler.Stale {
                throw DariTransportError(reason: stale.reason ?? "connection closed before the request was sent")
            }
        } catch let error as DariRequestRefused {
            throw error
        } catch let error as DariTransportError {
            if Task.isCancelled { throw CancellationError() }
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw DariTransportError(reason: Self.describe(error))
        }
    }

    /// A short, printable reason for a transport failure (never a URL or a body).
    static func describe(_ error: any Error) -> String {
        switch error {
        case let e as DariTransportError: return e.reason
        case let e as ChannelError:
            if case .connectTimeout = e { return "connect timed out" }
            return "connection failed: \(e)"
        case let e as NIOConnectionError:
            if let first = e.connectionErrors.first { return "connection failed: \(String(describing: first.error).prefix(200))" }
            if let dns = e.dnsAAAAError ?? e.dnsAError { return "name resolution failed: \(String(describing: dns).prefix(200))" }
            return "connection failed: no address for the host"
        case let e as NIOSSLError: return "TLS failed: \(String(describing: e).prefix(200))"
        case let e as NIOSSLExtraError: return "TLS failed: \(String(describing: e).prefix(200))"
        case let e as BoringSSLError: return "TLS failed: \(String(describing: e).prefix(200))"
        case let e as HTTPParserError: return "invalid HTTP answer: \(e)"
        default: return "connection failed: \(String(describing: error).prefix(200))"
        }
    }
}

package enum DariBridgeVersion {
    package static let current = "0.1.0"
}

import DariBridge
import AsyncHTTPClient
import NIOCore

/// The address a host name resolved to is checked on the socket actually connected.
///
/// AsyncHTTPClient calls `http1_1ConnectionDebugInitializer` / `http2ConnectionDebugInitializer`
/// with each new connection's channel after it connected (and after TLS and ALPN), before
/// the pool hands the connection to a request; a failed future fails the connection, and with
/// `retryConnectionEstablishment = false` the pool fails the waiting requests with our error,
/// unwrapped. No request byte has been written at that point (TLS: the handshake has happened).
/// Checking the socket, not a separate DNS lookup, leaves no window for DNS rebinding.
extension DariClient {
    static func addressCheck(_ policy: URLPolicy) -> @Sendable (Channel) -> EventLoopFuture<Void> {
        { channel in
            let refusal: String?
            if let text = channel.remoteAddress?.ipAddress, let address = IPAddress(parsing: text) {
                refusal = policy.connectionRefusal(to: address)
            } else {
                refusal = policy.allowPrivateAddresses ? nil : "the connected address is not an IP address"
            }
            guard let refusal else { return channel.eventLoop.makeSucceededVoidFuture() }
            // The pool forgets a connection whose initializer failed; close it ourselves (the
            // pool ignores the close of a connection it no longer knows, or still is starting).
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(DariRequestRefused(reason: refusal))
        }
    }

    /// Our refusal as the failed request reports it.
    static func refusal(in error: any Error) -> DariRequestRefused? {
        error as? DariRequestRefused
    }
}

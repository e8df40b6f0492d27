import DariBridge
import NIOCore

/// The address a host name resolved to is checked on the socket actually connected.
///
/// `DariConnectionPool.connect` calls this with each new connection's peer address right
/// after the TCP connect, before TLS starts and before any request byte is written; a refused
/// connection is closed and the request fails with `DariRequestRefused`. Checking the socket,
/// not a separate DNS lookup, leaves no window for DNS rebinding.
extension DariConnectionPool {
    /// nil when the policy lets the worker talk to `address`, else why not.
    static func addressRefusal(_ address: SocketAddress?, _ policy: URLPolicy) -> String? {
        if let text = address?.ipAddress, let ip = IPAddress(parsing: text) {
            return policy.connectionRefusal(to: ip)
        }
        return policy.allowPrivateAddresses ? nil : "the connected address is not an IP address"
    }
}

/// Thrown by a `DariTransport` that refuses to send a request its URL policy
/// did not approve as it would go out (the request target the HTTP client
/// would write differs from the approved bytes, or the address connected to is
/// private while the policy does not allow that). No request byte was written;
/// the message gets `url_not_allowed`, never a retry.
package struct DariRequestRefused: Error, Sendable, Equatable, CustomStringConvertible {
    package var reason: String
    package init(reason: String) { self.reason = reason }
    package var description: String { reason }
}

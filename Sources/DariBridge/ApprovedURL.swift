/// What `URLPolicy.approve` allowed: `DariClient` connects to `host`:`port` and writes
/// the request line and `Host` header from these values, byte for byte.
package struct ApprovedURL: Sendable, Equatable {
    /// Lowercased: `https`, or `http` when allowed.
    package var scheme: String
    /// The host as written in the URL (case kept), an IPv6 literal in brackets.
    package var host: String
    /// The port connected to: the URL's, else the scheme's default.
    package var port: Int
    /// The exact bytes of the request line's target: the URL's path and, when it has
    /// one, `?` and its query, as written (never re-encoded, never normalised).
    package var requestTarget: String

    package init(scheme: String, host: String, port: Int, requestTarget: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.requestTarget = requestTarget
    }

    package var defaultPort: Int { scheme == "https" ? 443 : 80 }

    /// The `Host` header: the host, with `:port` unless it is the default.
    package var hostHeader: String { port == defaultPort ? host : "\(host):\(port)" }
}

/// Why `URLPolicy.approve` refused a URL: short, printable ASCII, never the whole URL.
package struct URLRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    package var reason: String
    package init(reason: String) { self.reason = reason }
    package var description: String { reason }
}

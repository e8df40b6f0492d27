/// What `URLPolicy.approve` allowed, in the form AsyncHTTPClient will use it: the
/// request that goes out must have exactly these values (`DariClient` checks it
/// right before sending and refuses otherwise).
public struct ApprovedURL: Sendable, Equatable {
    /// Lowercased: `https`, or `http` when allowed.
    public var scheme: String
    /// The host as AsyncHTTPClient's `Request.host` gives it: as written in the URL (case
    /// kept), an IPv6 literal in brackets.
    public var host: String
    /// The port connected to: the URL's, else the scheme's default.
    public var port: Int
    /// The exact bytes of the request line's target: the URL's path and, when it has
    /// one, `?` and its query, as written (never re-encoded, never normalised).
    public var requestTarget: String

    public init(scheme: String, host: String, port: Int, requestTarget: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.requestTarget = requestTarget
    }

    public var defaultPort: Int { scheme == "https" ? 443 : 80 }

    /// The `Host` header AsyncHTTPClient writes: the host, with `:port` unless it is the default.
    public var hostHeader: String { port == defaultPort ? host : "\(host):\(port)" }
}

/// Why `URLPolicy.approve` refused a URL: short, printable ASCII, never the whole URL.
public struct URLRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

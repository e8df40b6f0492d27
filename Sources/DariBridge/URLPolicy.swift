#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decides whether an untrusted callback URL (Dari's `resume_workflow_url`, taken from a message) may be called.
///
/// The URL is parsed by hand with a deliberately strict grammar instead of Foundation's `URL`, whose
/// leniency (and differences from other parsers) is exactly what URL-confusion attacks exploit:
/// `scheme "://" authority path [ "?" query ]`, ASCII only, no whitespace, no backslashes, no userinfo,
/// no fragment, no dot segments or encoded dots/slashes in the path, no percent-escapes that do not
/// decode to valid UTF-8 (swift-foundation's `URL.path` is "" for those; AsyncHTTPClient, the client
/// before, then sent `/`). Hosts are compared as written (case-insensitive) and never resolved.
///
/// `approve` returns what it allowed (`ApprovedURL`); `DariClient` writes the request line and
/// `Host` from that, byte for byte, and checks the connected address with
/// `connectionRefusal(to:)`.
package struct URLPolicy: Sendable {
    /// Product default: Dari's public API host.
    package static let defaultAllowedHosts = ["api.usedari.com"]
    /// Product default: the endpoints Dari hands out as `resume_workflow_url`.
    package static let defaultAllowedPathPrefixes = ["/public/send-user-signal/", "/send-user-signal/"]

    package let allowedHosts: [String]
    package let allowedPathPrefixes: [String]
    /// The prefixes' bytes: the path (ASCII, checked) is compared as bytes, no String made.
    private let pathPrefixBytes: [[UInt8]]
    package let allowInsecureHTTP: Bool
    /// When false (the default), a connection to a loopback, private, link-local, CGNAT,
    /// multicast or otherwise non-public address is refused unless that very address is
    /// written as an IP literal in `allowedHosts`.
    package let allowPrivateAddresses: Bool
    private let hostEntries: [HostPort]
    /// The IP literals of `allowedHosts`, normalised (`IPAddress.normalised`).
    let literalAddresses: Set<IPAddress>

    /// `allowedHosts` entries are `host` or `host:port` (IPv6 as `[::1]:8080`). Entries that do not parse
    /// under the same strict rules as URLs never match anything.
    package init(allowedHosts: [String], allowedPathPrefixes: [String], allowInsecureHTTP: Bool,
                allowPrivateAddresses: Bool = false) {
        self.allowedHosts = allowedHosts
        self.allowedPathPrefixes = allowedPathPrefixes
        self.pathPrefixBytes = allowedPathPrefixes.map { Array($0.utf8) }
        self.allowInsecureHTTP = allowInsecureHTTP
        self.allowPrivateAddresses = allowPrivateAddresses
        let entries = allowedHosts.compactMap { entry -> HostPort? in
            let bytes = entry.asciiTrimmedBytes
            guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  case .success(let parsed) = Self.parseHostPort(bytes[...]) else { return nil }
            return parsed
        }
        self.hostEntries = entries
        self.literalAddresses = Set(entries.compactMap { $0.ipLiteral?.normalised })
    }

    /// Returns nil when allowed, else a short human-readable reason (goes into the outcome's `detail`).
    package func rejection(for url: String) -> String? {
        switch approve(url) {
        case .success: return nil
        case .failure(let refusal): return refusal.reason
        }
    }

    /// May a connection to `address` (the socket's remote address) carry a request?
    /// nil when yes, else why not.
    package func connectionRefusal(to address: IPAddress) -> String? {
        guard !allowPrivateAddresses, let range = address.nonPublicRange else { return nil }
        if literalAddresses.contains(address.normalised) { return nil }
        return "connected address \(address) is \(range), not allowed (DARI_BRIDGE_ALLOW_PRIVATE_ADDRESSES is off and the address is not an allowed IP literal)"
    }

    /// The URL as `DariClient` will send it, or why it is not allowed.
    package func approve(_ url: String) -> Result<ApprovedURL, URLRefusal> {
        func refuse(_ reason: String) -> Result<ApprovedURL, URLRefusal> { .failure(URLRefusal(reason: reason)) }
        let b = Array(url.utf8)
        guard !b.isEmpty else { return refuse("URL is empty") }
        for c in b {
            if c >= 0x80 { return refuse("URL contains non-ASCII characters") }
            if c <= 0x20 || c == 0x7F { return refuse("URL contains whitespace or control characters") }
            if c == UInt8(ascii: "\\") { return refuse("URL contains a backslash") }
        }

        // Scheme.
        guard let colon = b.firstIndex(of: UInt8(ascii: ":")) else { return refuse("URL has no scheme") }
        let schemeBytes = b[..<colon]
        guard let first = schemeBytes.first, Self.isAlpha(first),
              schemeBytes.allSatisfy({ Self.isAlpha($0) || Self.isDigit($0) || Self.isOneOf($0, "+-.") })
        else { return refuse("URL has no valid scheme") }
        let scheme = String(decoding: schemeBytes, as: UTF8.self).lowercased()
        let defaultPort: Int
        switch scheme {
        case "https":
            defaultPort = 443
        case "http" where allowInsecureHTTP:
            defaultPort = 80
        default:
            return refuse("scheme \(Self.clip(scheme)) is not allowed (\(allowInsecureHTTP ? "https or http" : "https") only)")
        }

        // "//" authority.
        let afterColon = b[(colon + 1)...]
        guard afterColon.starts(with: [UInt8(ascii: "/"), UInt8(ascii: "/")]) else {
            return refuse("URL has no authority (expected \(scheme)://host/path)")
        }
        if b.contains(UInt8(ascii: "#")) { return refuse("URL carries a fragment") }
        let authorityStart = colon + 3
        let authorityEnd = b[authorityStart...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
            ?? b.endIndex
        let authority = b[authorityStart..<authorityEnd]
        if authority.contains(UInt8(ascii: "@")) { return refuse("URL carries user credentials") }
        let hostPort: HostPort
        switch Self.parseHostPort(authority) {
        case .success(let parsed): hostPort = parsed
        case .failure(let rejection): return refuse(rejection.reason)
        }
        if !hostEntries.contains(where: { $0.admits(hostPort, defaultPort: defaultPort) }) {
            let shown = hostPort.host + (hostPort.port.map { ":\($0)" } ?? "")
            return refuse("host \(Self.clip(shown)) is not in the allowed hosts")
        }

        // Path (mandatory) and optional query.
        guard authorityEnd < b.endIndex, b[authorityEnd] == UInt8(ascii: "/") else { return refuse("URL has an empty path") }
        let pathEnd = b[authorityEnd...].firstIndex(of: UInt8(ascii: "?")) ?? b.endIndex
        let path = b[authorityEnd..<pathEnd]
        if let problem = Self.pathProblem(path) { return refuse(problem) }
        if pathEnd < b.endIndex, let problem = Self.queryProblem(b[(pathEnd + 1)...]) { return refuse(problem) }
        guard pathPrefixBytes.contains(where: { Self.hasPrefix(path, $0) }) else {
            return refuse("path \(Self.clip(String(decoding: path, as: UTF8.self))) does not start with an allowed prefix")
        }
        return .success(ApprovedURL(scheme: scheme, host: hostPort.asWritten, port: hostPort.port ?? defaultPort,
                                    requestTarget: String(decoding: b[authorityEnd...], as: UTF8.self)))
    }
}

extension URLPolicy {
    static func hasPrefix(_ bytes: ArraySlice<UInt8>, _ prefix: [UInt8]) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        var i = bytes.startIndex
        for b in prefix {
            if bytes[i] != b { return false }
            i += 1
        }
        return true
    }
}

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
/// no fragment, no dot segments or encoded dots/slashes in the path.
/// Hosts are compared as written (case-insensitive) and never resolved.
public struct URLPolicy: Sendable {
    /// Product default: Dari's public API host.
    public static let defaultAllowedHosts = ["api.usedari.com"]
    /// Product default: the endpoints Dari hands out as `resume_workflow_url`.
    public static let defaultAllowedPathPrefixes = ["/public/send-user-signal/", "/send-user-signal/"]

    public let allowedHosts: [String]
    public let allowedPathPrefixes: [String]
    public let allowInsecureHTTP: Bool
    private let hostEntries: [HostPort]

    /// `allowedHosts` entries are `host` or `host:port` (IPv6 as `[::1]:8080`). Entries that do not parse
    /// under the same strict rules as URLs never match anything.
    public init(allowedHosts: [String], allowedPathPrefixes: [String], allowInsecureHTTP: Bool) {
        self.allowedHosts = allowedHosts
        self.allowedPathPrefixes = allowedPathPrefixes
        self.allowInsecureHTTP = allowInsecureHTTP
        self.hostEntries = allowedHosts.compactMap { entry in
            let bytes = entry.asciiTrimmedBytes
            guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  case .success(let parsed) = Self.parseHostPort(bytes[...]) else { return nil }
            return parsed
        }
    }

    /// Returns nil when allowed, else a short human-readable reason (goes into the outcome's `detail`).
    public func rejection(for url: String) -> String? {
        let b = Array(url.utf8)
        guard !b.isEmpty else { return "URL is empty" }
        for c in b {
            if c >= 0x80 { return "URL contains non-ASCII characters" }
            if c <= 0x20 || c == 0x7F { return "URL contains whitespace or control characters" }
            if c == UInt8(ascii: "\\") { return "URL contains a backslash" }
        }

        // Scheme.
        guard let colon = b.firstIndex(of: UInt8(ascii: ":")) else { return "URL has no scheme" }
        let schemeBytes = b[..<colon]
        guard let first = schemeBytes.first, Self.isAlpha(first),
              schemeBytes.allSatisfy({ Self.isAlpha($0) || Self.isDigit($0) || Self.isOneOf($0, "+-.") })
        else { return "URL has no valid scheme" }
        let scheme = String(decoding: schemeBytes, as: UTF8.self).lowercased()
        let defaultPort: Int
        switch scheme {
        case "https":
            defaultPort = 443
        case "http" where allowInsecureHTTP:
            defaultPort = 80
        default:
            return "scheme \(Self.clip(scheme)) is not allowed (\(allowInsecureHTTP ? "https or http" : "https") only)"
        }

        // "//" authority.
        let afterColon = b[(colon + 1)...]
        guard afterColon.starts(with: [UInt8(ascii: "/"), UInt8(ascii: "/")]) else {
            return "URL has no authority (expected \(scheme)://host/path)"
        }
        if b.contains(UInt8(ascii: "#")) { return "URL carries a fragment" }
        let authorityStart = colon + 3
        let authorityEnd = b[authorityStart...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
            ?? b.endIndex
        let authority = b[authorityStart..<authorityEnd]
        if authority.contains(UInt8(ascii: "@")) { return "URL carries user credentials" }
        let hostPort: HostPort
        switch Self.parseHostPort(authority) {
        case .success(let parsed): hostPort = parsed
        case .failure(let rejection): return rejection.reason
        }
        if !hostEntries.contains(where: { $0.admits(hostPort, defaultPort: defaultPort) }) {
            let shown = hostPort.host + (hostPort.port.map { ":\($0)" } ?? "")
            return "host \(Self.clip(shown)) is not in the allowed hosts"
        }

        // Path (mandatory) and optional query.
        guard authorityEnd < b.endIndex, b[authorityEnd] == UInt8(ascii: "/") else { return "URL has an empty path" }
        let pathEnd = b[authorityEnd...].firstIndex(of: UInt8(ascii: "?")) ?? b.endIndex
        let path = b[authorityEnd..<pathEnd]
        if let problem = Self.pathProblem(path) { return problem }
        if pathEnd < b.endIndex, let problem = Self.queryProblem(b[(pathEnd + 1)...]) { return problem }
        let pathString = String(decoding: path, as: UTF8.self)
        guard allowedPathPrefixes.contains(where: { pathString.hasPrefix($0) }) else {
            return "path \(Self.clip(pathString)) does not start with an allowed prefix"
        }
        return nil
    }
}

// MARK: - Parsing helpers

extension URLPolicy {
    struct HostPort: Sendable, Equatable {
        /// Lowercased, as written (IPv6 literals keep their brackets).
        var host: String
        var port: Int?

        /// `self` is an allow-list entry; `url` is the URL's authority.
        func admits(_ url: HostPort, defaultPort: Int) -> Bool {
            guard host == url.host else { return false }
            guard let port else { return url.port == nil || url.port == defaultPort }
            return (url.port ?? defaultPort) == port
        }
    }

    struct Rejection: Error {
        var reason: String
    }

    static func parseHostPort(_ a: ArraySlice<UInt8>) -> Result<HostPort, Rejection> {
        guard !a.isEmpty else { return .failure(Rejection(reason: "URL has an empty host")) }
        let hostBytes: ArraySlice<UInt8>
        var portBytes: ArraySlice<UInt8>?
        if a.first == UInt8(ascii: "[") {
            guard let close = a.firstIndex(of: UInt8(ascii: "]")) else {
                return .failure(Rejection(reason: "IPv6 host is not closed with ]"))
            }
            let inner = a[(a.startIndex + 1)..<close]
            guard inner.contains(UInt8(ascii: ":")),
                  inner.allSatisfy({ isHex($0) || isOneOf($0, ":.") }) else {
                return .failure(Rejection(reason: "IPv6 host is malformed"))
            }
            hostBytes = a[...close]
            let rest = a[(close + 1)...]
            if let sep = rest.first {
                guard sep == UInt8(ascii: ":") else { return .failure(Rejection(reason: "IPv6 host is malformed")) }
                portBytes = rest.dropFirst()
            }
        } else {
            if let sep = a.firstIndex(of: UInt8(ascii: ":")) {
                hostBytes = a[..<sep]
                portBytes = a[(sep + 1)...]
            } else {
                hostBytes = a
            }
            guard !hostBytes.isEmpty else { return .failure(Rejection(reason: "URL has an empty host")) }
            guard hostBytes.allSatisfy({ isAlpha($0) || isDigit($0) || isOneOf($0, "-._") }) else {
                return .failure(Rejection(reason: "host \(clip(String(decoding: hostBytes, as: UTF8.self))) contains invalid characters"))
            }
        }
        let host = String(decoding: hostBytes, as: UTF8.self).lowercased()
        guard let portBytes else { return .success(HostPort(host: host, port: nil)) }
        guard !portBytes.isEmpty else { return .failure(Rejection(reason: "URL has an empty port")) }
        let shown = clip(String(decoding: portBytes, as: UTF8.self))
        guard portBytes.count <= 5, portBytes.allSatisfy(isDigit) else {
            return .failure(Rejection(reason: "port \(shown) is not valid"))
        }
        let port = portBytes.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard (1...65535).contains(port) else { return .failure(Rejection(reason: "port \(shown) is not valid")) }
        return .success(HostPort(host: host, port: port))
    }

    /// `path` starts with "/" and contains no "?" or "#".
    static func pathProblem(_ path: ArraySlice<UInt8>) -> String? {
        var i = path.startIndex
        while i < path.endIndex {
            let c = path[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < path.endIndex, isHex(path[i + 1]), isHex(path[i + 2]) else {
                    return "path contains malformed percent-encoding"
                }
                switch hexValue(path[i + 1]) * 16 + hexValue(path[i + 2]) {
                case 0x2E: return "path contains an encoded dot (%2e)"
                case 0x2F: return "path contains an encoded slash (%2f)"
                case 0x5C: return "path contains an encoded backslash (%5c)"
                case 0x25: return "path contains an encoded percent sign (%25)"
                case 0x00: return "path contains an encoded NUL (%00)"
                default: break
                }
                i += 3
                continue
            }
            guard c == UInt8(ascii: "/") || isPathChar(c) else { return "path contains an invalid character" }
            i += 1
        }
        let segments = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if segments.contains(where: { $0.elementsEqual([UInt8(ascii: ".")]) || $0.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) }) {
            return "path contains a dot segment (. or ..)"
        }
        return nil
    }

    static func queryProblem(_ query: ArraySlice<UInt8>) -> String? {
        var i = query.startIndex
        while i < query.endIndex {
            let c = query[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < query.endIndex, isHex(query[i + 1]), isHex(query[i + 2]) else {
                    return "query contains malformed percent-encoding"
                }
                i += 3
                continue
            }
            guard isPathChar(c) || isOneOf(c, "/?") else { return "query contains an invalid character" }
            i += 1
        }
        return nil
    }

    /// RFC 3986 pchar minus pct-encoded: unreserved / sub-delims / ":" / "@".
    static func isPathChar(_ c: UInt8) -> Bool {
        isAlpha(c) || isDigit(c) || isOneOf(c, "-._~!$&'()*+,;=:@")
    }

    static func isAlpha(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
    }

    static func isDigit(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
    }

    static func isHex(_ c: UInt8) -> Bool {
        isDigit(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(c)
    }

    static func hexValue(_ c: UInt8) -> Int {
        if isDigit(c) { return Int(c - UInt8(ascii: "0")) }
        return Int((c | 0x20) - UInt8(ascii: "a")) + 10
    }

    static func isOneOf(_ c: UInt8, _ set: StaticString) -> Bool {
        set.withUTF8Buffer { $0.contains(c) }
    }

    /// Keeps echoed (already ASCII-printable) URL fragments short in outcome details.
    static func clip(_ s: String) -> String {
        s.utf8.count <= 120 ? s : String(s.prefix(120)) + "..."
    }
}

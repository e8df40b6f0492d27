// MARK: - Parsing helpers

extension URLPolicy {
    struct HostPort: Sendable, Equatable {
        /// Lowercased, as written (IPv6 literals keep their brackets).
        var host: String
        var port: Int?
        /// The host as written, case kept (what `DariClient` sends in `Host`).
        var asWritten: String
        /// Set when the host is an IPv4 or (bracketed) IPv6 literal.
        var ipLiteral: IPAddress?

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
        var literal: IPAddress?
        if a.first == UInt8(ascii: "[") {
            guard let close = a.firstIndex(of: UInt8(ascii: "]")) else {
                return .failure(Rejection(reason: "IPv6 host is not closed with ]"))
            }
            let inner = a[(a.startIndex + 1)..<close]
            // Only what inet_pton takes as IPv6: anything else a client would treat as a
            // host name.
            guard inner.contains(UInt8(ascii: ":")),
                  inner.allSatisfy({ isHex($0) || isOneOf($0, ":.") }),
                  let address = IPAddress(parsing: String(decoding: inner, as: UTF8.self)) else {
                return .failure(Rejection(reason: "IPv6 host is malformed"))
            }
            literal = address
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
            literal = IPAddress.parseV4(hostBytes).map { .v4($0) }
        }
        let written = String(decoding: hostBytes, as: UTF8.self)
        let host = written.lowercased()
        guard let portBytes else { return .success(HostPort(host: host, port: nil, asWritten: written, ipLiteral: literal)) }
        guard !portBytes.isEmpty else { return .failure(Rejection(reason: "URL has an empty port")) }
        let shown = clip(String(decoding: portBytes, as: UTF8.self))
        guard portBytes.count <= 5, portBytes.allSatisfy(isDigit) else {
            return .failure(Rejection(reason: "port \(shown) is not valid"))
        }
        let port = portBytes.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard (1...65535).contains(port) else { return .failure(Rejection(reason: "port \(shown) is not valid")) }
        return .success(HostPort(host: host, port: port, asWritten: written, ipLiteral: literal))
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
        if !decodesToUTF8(path) { return "path contains percent-escapes that are not valid UTF-8" }
        if hasDotSegment(path) { return "path contains a dot segment (. or ..)" }
        return nil
    }

    /// Is one of the `/`-separated segments of `path` exactly `.` or `..`? (One pass, no
    /// arrays: `split` cost about 3,000 instructions a message.)
    static func hasDotSegment(_ path: ArraySlice<UInt8>) -> Bool {
        var dots = 0          // dots in the current segment so far
        var onlyDots = true   // the current segment has nothing but dots
        for c in path {
            if c == UInt8(ascii: "/") {
                if onlyDots && (dots == 1 || dots == 2) { return true }
                dots = 0
                onlyDots = true
            } else if c == UInt8(ascii: ".") {
                dots += 1
            } else {
                onlyDots = false
            }
        }
        return onlyDots && (dots == 1 || dots == 2)
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
        if !decodesToUTF8(query) { return "query contains percent-escapes that are not valid UTF-8" }
        return nil
    }

    /// Do the percent-escapes of `part` (already checked well-formed) decode to valid UTF-8?
    /// Overlong forms (%C0%AE), surrogates (%ED%A0%80), code points over U+10FFFF, truncated
    /// sequences and lone continuation bytes (%80) do not. swift-foundation's `URL.path` is ""
    /// for such a path (AsyncHTTPClient, the worker's client before, then sent `/` instead of the path
    /// approved here); other parsers decode them differently, so they are refused.
    static func decodesToUTF8(_ part: ArraySlice<UInt8>) -> Bool {
        // The callers checked that every byte is printable ASCII: without an escape it is UTF-8.
        guard part.contains(UInt8(ascii: "%")) else { return part.allSatisfy { $0 < 0x80 } }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(part.count)
        var i = part.startIndex
        while i < part.endIndex {
            if part[i] == UInt8(ascii: "%"), i + 2 < part.endIndex, isHex(part[i + 1]), isHex(part[i + 2]) {
                decoded.append(UInt8(truncatingIfNeeded: hexValue(part[i + 1]) * 16 + hexValue(part[i + 2])))
                i += 3
            } else {
                decoded.append(part[i])
                i += 1
            }
        }
        return String(validating: decoded, as: UTF8.self) != nil
    }

    /// RFC 3986 pchar minus pct-encoded: unreserved / sub-delims / ":" / "@".
    static func isPathChar(_ c: UInt8) -> Bool {
        c < 0x80 && pathCharTable[Int(c)]
    }

    /// `isPathChar` for every ASCII byte, built from the grammar's own definition once.
    private static let pathCharTable: [Bool] = (0..<128).map { (c: Int) -> Bool in
        let b = UInt8(c)
        return isAlpha(b) || isDigit(b) || isOneOf(b, "-._~!$&'()*+,;=:@")
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

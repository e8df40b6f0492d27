extension AMQPURL {
    /// Parses one URL. Errors never quote the user, the password or anything
    /// else before the host: a password with an unencoded `/`, `?`, `#` or `@`
    /// would otherwise end up in the error (and in a log) as "the port" or
    /// "the vhost".
    package init(parsing string: String) throws(ParseError) {
        if string.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw ParseError("contains a control character")
        }
        // A URI is ASCII; anything else is percent-encoded (RFC 3986). This also
        // keeps the delimiter search below honest: it works on Characters, and a
        // combining mark after ':' or '@' would merge with it into one Character
        // (found by fuzzing: the password then ended up in the user name, and in
        // `description`).
        if string.utf8.contains(where: { $0 >= 0x80 }) {
            throw ParseError("contains non-ASCII characters: percent-encode them (UTF-8), e.g. in a password")
        }
        var rest = Substring(string)
        if rest.prefix(8).lowercased() == "amqps://" {
            tls = true
            rest = rest.dropFirst(8)
        } else if rest.prefix(7).lowercased() == "amqp://" {
            tls = false
            rest = rest.dropFirst(7)
        } else {
            throw ParseError("must start with amqp:// or amqps://", maySplitAtComma: true)
        }
        // The authority ends at the first '/', '?' or '#'. An '@' after that
        // point means the user or password holds one of those characters
        // unencoded (`amqp://u:pa/ss@host`, `amqp://u:pa?ss@host`): refuse,
        // rather than take part of the password for a port, vhost or query.
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let tail = rest[authorityEnd...]
        if tail.contains("@") {
            throw ParseError("has an '@' after the host: percent-encode '/', '?', '#' and '@' in the user and password (%2F %3F %23 %40)")
        }
        if tail.contains("#") { throw ParseError("must not have a fragment (#...)") }
        let path: Substring
        let query: Substring?
        if let q = tail.firstIndex(of: "?") {
            path = tail[..<q]
            query = tail[tail.index(after: q)...]
        } else {
            path = tail
            query = nil
        }

        var hostPort = authority
        user = "guest"
        password = "guest"
        if let at = authority.firstIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if hostPort.contains("@") {
                throw ParseError("has more than one '@' before the host: percent-encode '@' in the user and password as %40")
            }
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(userInfo[..<colon], what: "the user")
                password = try Self.decode(userInfo[userInfo.index(after: colon)...], what: "the password")
            } else {
                user = try Self.decode(userInfo, what: "the user")
                password = ""
            }
        }
        let (parsedHost, portText) = try Self.splitHostPort(hostPort)
        host = parsedHost.isEmpty ? "localhost" : parsedHost
        if let portText {
            // Not quoted: without an '@', "host:port" may really be "user:password".
            guard portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let p = Int(portText), (1...65535).contains(p) else {
                throw ParseError("the port is not a number from 1 to 65535", maySplitAtComma: true)
            }
            port = p
        } else {
            port = tls ? 5671 : 5672
        }
        let vhostText = path.dropFirst()  // the '/'
        vhost = vhostText.isEmpty ? "/" : try Self.decode(vhostText, what: "the vhost")
        heartbeatSeconds = nil
        connectionTimeoutMs = nil
        tlsOptions = AMQPTLSOptions()
        if let query { try applyQuery(query) }
    }

    /// `AMQP_URL` as a comma-separated list (the nodes of a cluster). Items
    /// are trimmed of white space; an empty item is an error.
    package static func parseList(_ text: String) throws(ParseError) -> [AMQPURL] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        var urls: [AMQPURL] = []
        for (i, item) in items.enumerated() {
            let trimmed = item.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()
            let which = items.count == 1 ? "" : "URL \(i + 1) of \(items.count): "
            guard !trimmed.isEmpty else { throw ParseError(items.count == 1 ? "is empty" : "\(which)is empty (a stray ',')") }
            do throws(ParseError) {
                urls.append(try AMQPURL(parsing: String(trimmed)))
            } catch {
                let hint = items.count > 1 && error.maySplitAtComma ? " (a ',' in a user or password must be percent-encoded as %2C)" : ""
                throw ParseError("\(which)\(error.reason)\(hint)")
            }
        }
        return urls
    }

    private static func splitHostPort(_ hostPort: Substring) throws(ParseError) -> (String, Substring?) {
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw ParseError("has an unterminated IPv6 host ([...)") }
            let host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw ParseError("has an IPv6 host with characters other than hex digits, ':' and '.'")
            }
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") { return (String(host), after.dropFirst()) }
            guard after.isEmpty else { throw ParseError("has something other than ':port' after the IPv6 host") }
            return (String(host), nil)
        }
        var host = hostPort
        var portText: Substring? = nil
        if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        }
        guard host.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "." || $0 == "_") }) else {
            throw ParseError("has a host with characters other than letters, digits, '-', '.' and '_' (a user or password needs '@' after it)", maySplitAtComma: true)
        }
        return (String(host), portText)
    }

    /// Percent-decodes; the result must be UTF-8 without NUL (it goes to C
    /// as a C string, where a NUL would silently cut it short).
    static func decode(_ s: Substring, what: String) throws(ParseError) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = hex(it[it.startIndex]), let lo = hex(it[it.startIndex + 1]) else {
                    throw ParseError("has bad percent-encoding in \(what)")
                }
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw ParseError("has \(what) that is not valid UTF-8 after percent-decoding")
        }
        if bytes.contains(0) { throw ParseError("has \(what) with a NUL byte (%00)") }
        return decoded
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

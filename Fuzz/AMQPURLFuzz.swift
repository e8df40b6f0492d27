// libFuzzer target: the AMQP URL parser (scripts/fuzz.sh builds it with Sources/RabbitMQ/AMQPURL*.swift
// and, when there, AMQPTLSOptions.swift).
// Uses only `AMQPURL(parsing:)` and string descriptions (the type is being reworked elsewhere).
// Input: `user NUL password NUL rest`, parsed as `amqp://user:password@rest` (or the input
// itself when it has no NUL). Properties: no crash; the password does not appear in the error
// description nor in the description of the parsed URL — unless it still appears when the same
// URL is parsed with the password's letters and digits rotated (percent-escapes kept, so the
// parse takes the same path: then it is the message's own wording), or is part of the user or
// the rest (then it comes from elsewhere in the URL).
//
// KNOWN (found by this target, see AMQPURLRegressionTests): a parser that looks for ":", "@",
// "/" in `Character`s misses a delimiter that a neighbouring scalar glues into one grapheme
// (`@` + U+0741 combining mark, U+0601 prepend mark + `:`), and then shows the password in an
// error or in `description`. Fixed: the parser refuses non-ASCII URLs. Strict by default now;
// FUZZ_AMQPURL_STRICT=0 brings the old exemption back.
#if canImport(Glibc)
import Glibc
#endif

private let strict = getenv("FUZZ_AMQPURL_STRICT").map { String(cString: $0) != "0" } ?? true
private let delimiters = Set("/?#@:[]".unicodeScalars)

private func outcome(_ text: String) -> String {
    do {
        return "ok " + String(describing: try AMQPURL(parsing: text))
    } catch {
        return "error " + String(describing: error)
    }
}

/// Substring search on scalars (not graphemes, which could hide a match).
private func contains(_ haystack: String, _ needle: String) -> Bool {
    let h = Array(haystack.unicodeScalars), n = Array(needle.unicodeScalars)
    guard !n.isEmpty, h.count >= n.count else { return n.isEmpty }
    return (0...(h.count - n.count)).contains { i in h[i..<(i + n.count)].elementsEqual(n) }
}

/// Letters rot13, digits +5, percent-escapes and everything else kept.
private func rotated(_ text: String) -> String {
    var out = String.UnicodeScalarView()
    var keep = 0
    for u in text.unicodeScalars {
        if keep > 0 || u == "%" {
            keep = u == "%" ? 2 : keep - 1
            out.append(u)
            continue
        }
        switch u.value {
        case 0x41...0x5A: out.append(Unicode.Scalar(UInt8(0x41 + (u.value - 0x41 + 13) % 26)))
        case 0x61...0x7A: out.append(Unicode.Scalar(UInt8(0x61 + (u.value - 0x61 + 13) % 26)))
        case 0x30...0x39: out.append(Unicode.Scalar(UInt8(0x30 + (u.value - 0x30 + 5) % 10)))
        default: out.append(u)
        }
    }
    return String(out)
}

/// Is a delimiter scalar part of a larger grapheme (the KNOWN class above)?
private func glued(_ text: String) -> Bool {
    text.contains { c in c.unicodeScalars.count > 1 && c.unicodeScalars.contains(where: { delimiters.contains($0) }) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAMQPURL(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    guard parts.count == 3 else {
        _ = outcome(String(decoding: bytes, as: UTF8.self))
        return 0
    }
    let (user, password, rest) = (parts[0], parts[1], parts[2])
    let scheme = rest.hasPrefix("s") ? "amqps://" : "amqp://"
    let url = scheme + user + ":" + password + "@" + rest
    let seen = outcome(url)
    let other = outcome(scheme + user + ":" + rotated(password) + "@" + rest)
    // A password with an unencoded "/", "?", "#" or "@" ends the authority (or the userinfo)
    // early, so no parser sees it as the password: `amqp://u:abc/x@h` is host `u`, port `abc`.
    // Likewise a user with one of those or a ":" moves the password elsewhere (into the vhost).
    guard password.unicodeScalars.count >= 3,
          !password.unicodeScalars.contains(where: { "/?#@".unicodeScalars.contains($0) }),
          !user.unicodeScalars.contains(where: { "/?#@:".unicodeScalars.contains($0) }) else { return 0 }
    // Text that is also in the user or the rest may legitimately show (as the user, host or vhost).
    guard !contains(user, password), !contains(rest, password) else { return 0 }
    if contains(seen, password) && !contains(other, password) && (strict || !glued(url)) {
        fatalError("the password shows in \(seen.debugDescription)")
    }
    return 0
}

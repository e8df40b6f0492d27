// libFuzzer target: the URL policy (scripts/fuzz.sh builds it with Sources/DariBridge/
// {URLPolicy,URLPolicy+Grammar,ApprovedURL,IPAddress,IPAddress+Classification,ASCIITrim}.swift).
// Property: whatever `approve` allows goes out exactly as approved: the request target that
// AsyncHTTPClient 1.37 derives from Foundation's `URL(string:)` (HTTPHandler.swift, `URL.uri`)
// equals the approved bytes, and its host and port equal the approved ones. Traps otherwise.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

private let policies = [
    URLPolicy(allowedHosts: ["api.usedari.com", "Dari.Example:8443", "127.0.0.1:8080", "[::1]:8080", "[fe80::1]", "a_b-c.d."],
              allowedPathPrefixes: ["/"], allowInsecureHTTP: true),
    URLPolicy(allowedHosts: URLPolicy.defaultAllowedHosts, allowedPathPrefixes: URLPolicy.defaultAllowedPathPrefixes,
              allowInsecureHTTP: false),
]

/// `URL.uri` of AsyncHTTPClient 1.37 (the request target it writes).
private func ahcTarget(_ url: URL) -> String {
    var uri = url.path.isEmpty ? "/" : (URLComponents(url: url, resolvingAgainstBaseURL: true)?.percentEncodedPath ?? url.path)
    if let query = url.query { uri += "?" + query }
    return uri
}

/// glibc's inet_pton (what NIO's `SocketAddress(ipAddress:)`, hence AsyncHTTPClient, uses), as our type.
private func pton(_ text: String) -> IPAddress? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return .v4(UInt32(bigEndian: v4.s_addr)) }
    var v6 = in6_addr()
    guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
    let bytes = withUnsafeBytes(of: v6) { Array($0) }
    return .v6(bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzURLPolicy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // The input as a whole URL, and as the path-and-query / the host of allowed URLs, so that
    // most inputs get past the scheme and host checks.
    check(text)
    check("https://api.usedari.com/" + text)
    check("http://127.0.0.1:8080/public/send-user-signal/" + text)
    if !text.utf8.contains(where: { $0 == UInt8(ascii: "]") || $0 == UInt8(ascii: "%") }) {
        // An IPv6 literal the policy takes must be one inet_pton takes (else AsyncHTTPClient
        // treats it as a host name): allow exactly that literal and look.
        let literal = URLPolicy(allowedHosts: ["[\(text)]:8080"], allowedPathPrefixes: ["/"], allowInsecureHTTP: true)
        if case .success(let approved) = literal.approve("http://[\(text)]:8080/x") {
            guard pton(text) != nil else { fatalError("approved IPv6 literal inet_pton rejects: \(text.debugDescription)") }
            guard approved.host == "[\(text)]" else { fatalError("IPv6 host not kept as written") }
            check("http://[\(text)]:8080/x", policy: literal)
        }
    }
    // (inet_pton reads a C string: it would stop at a NUL, which never reaches it from a URL.)
    if !text.utf8.contains(0), IPAddress(parsing: text) != pton(text) { fatalError("IPAddress and inet_pton disagree on \(text.debugDescription)") }
    if let address = IPAddress(parsing: text) {
        _ = address.nonPublicRange
        guard IPAddress(parsing: address.description) == address else { fatalError("IPAddress description does not round-trip") }
        _ = policies[0].connectionRefusal(to: address)
    }
    return 0
}

private func check(_ text: String) {
    for policy in policies { check(text, policy: policy) }
}

private func check(_ text: String, policy: URLPolicy) {
    let rejection = policy.rejection(for: text)
    switch policy.approve(text) {
    case .failure(let refusal):
        if rejection != refusal.reason { fatalError("rejection(for:) and approve disagree") }
        if refusal.reason.isEmpty || refusal.reason.utf8.count > 400 { fatalError("bad reason length") }
        if !refusal.reason.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F }) {
            fatalError("reason is not printable ASCII")
        }
    case .success(let approved):
        if rejection != nil { fatalError("rejection(for:) and approve disagree") }
        guard let url = URL(string: text) else { fatalError("approved, but URL(string:) fails: \(text.debugDescription)") }
        guard url.scheme?.lowercased() == approved.scheme else { fatalError("scheme differs: \(text.debugDescription)") }
        // AsyncHTTPClient (Linux): url.host, IPv6 brackets trimmed, brackets added back for an IP literal.
        var host = url.host ?? ""
        if host.hasPrefix("[") { host.removeFirst() }
        if host.hasSuffix("]") { host.removeLast() }
        let approvedHost = approved.host.hasPrefix("[") ? String(approved.host.dropFirst().dropLast()) : approved.host
        guard host == approvedHost else { fatalError("host differs: \(text.debugDescription) -> \(host.debugDescription)") }
        guard (url.port ?? approved.defaultPort) == approved.port else { fatalError("port differs: \(text.debugDescription)") }
        let target = ahcTarget(url)
        guard target.utf8.elementsEqual(approved.requestTarget.utf8) else {
            fatalError("target differs: \(text.debugDescription) -> \(target.debugDescription) vs \(approved.requestTarget.debugDescription)")
        }
    }
}

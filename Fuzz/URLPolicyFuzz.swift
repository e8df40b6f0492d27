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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzURLPolicy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for policy in policies {
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
    if let address = IPAddress(parsing: text) {
        _ = address.nonPublicRange
        guard IPAddress(parsing: address.description) == address else { fatalError("IPAddress description does not round-trip") }
        _ = policies[0].connectionRefusal(to: address)
    }
    return 0
}

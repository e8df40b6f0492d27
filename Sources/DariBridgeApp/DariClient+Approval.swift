import DariBridge
import AsyncHTTPClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOHTTP1

/// The request that goes out is the request the policy approved.
///
/// AsyncHTTPClient does not send the URL string it is given: it parses it with Foundation's
/// `URL` and writes `URLComponents(url:).percentEncodedPath` (or `/` when `url.path` is empty,
/// which swift-foundation returns when the percent-decoded path is not valid UTF-8) plus
/// `"?" + url.query`, to `url.host` (IPv6 brackets trimmed, then re-added) on `url.port` or the
/// scheme's default. Any difference between that and what `URLPolicy` checked is refused here,
/// before a connection is even asked for.
extension DariClient {
    func approvedRequest(url: String, headers: HTTPHeaders, body: [UInt8]) throws -> HTTPClient.Request {
        let approved: ApprovedURL
        switch policy.approve(url) {
        case .success(let value): approved = value
        case .failure(let refusal): throw DariRequestRefused(reason: refusal.reason)
        }
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: .POST, headers: headers, body: .bytes(body))
        } catch {
            throw DariRequestRefused(reason: "the HTTP client cannot use the approved URL: \(Self.describe(error))")
        }
        if let mismatch = Self.mismatch(request, approved) { throw DariRequestRefused(reason: mismatch) }
        return request
    }

    /// nil when `request` goes out exactly as `approved`, else what differs (never the URL itself).
    static func mismatch(_ request: HTTPClient.Request, _ approved: ApprovedURL) -> String? {
        if request.scheme != approved.scheme { return "the HTTP client would use another scheme than the approved one" }
        if request.host != approved.host { return "the HTTP client would connect to another host than the approved one" }
        if request.port != approved.port { return "the HTTP client would connect to another port than the approved one" }
        if request.headers.contains(name: "Host") { return "the request carries its own Host header" }
        if !Self.requestTarget(of: request.url).utf8.elementsEqual(approved.requestTarget.utf8) {
            return "the HTTP client would send another request target than the approved one"
        }
        return nil
    }

    /// The request target AsyncHTTPClient 1.37 writes for `url` (`URL.uri` in its HTTPHandler.swift).
    static func requestTarget(of url: URL) -> String {
        var uri = url.path.isEmpty ? "/" : (URLComponents(url: url, resolvingAgainstBaseURL: true)?.percentEncodedPath ?? url.path)
        if let query = url.query { uri += "?" + query }
        return uri
    }
}

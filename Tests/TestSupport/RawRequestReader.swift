import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request as the raw test servers read it off a blocking socket.
package struct RawRequest {
    /// The request line's bytes, without CRLF.
    package var requestLine: [UInt8]
    /// Header names lowercased, values trimmed, in order.
    package var headers: [(name: String, value: String)]
    /// False when the connection ended before the whole Content-Length body arrived.
    package var bodyComplete: Bool

    package var requestLineText: String { String(decoding: requestLine, as: UTF8.self) }
    package func values(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }
}

/// Reads the next request: `data` holds what was read so far and keeps what follows the
/// request; `readMore` appends to the buffer it is given and returns false when nothing more
/// comes. nil when the connection ends (or 1 MiB passes) before a whole head.
package func readRawRequest(_ data: inout [UInt8], readMore: (inout [UInt8]) -> Bool) -> RawRequest? {
    let end = Array("\r\n\r\n".utf8)
    var headEnd = data.firstRange(of: end)?.lowerBound
    while headEnd == nil {
        if data.count > 1 << 20 || !readMore(&data) { return nil }
        headEnd = data.firstRange(of: end)?.lowerBound
    }
    guard let headEnd else { return nil }
    let lines = data[..<headEnd].split(separator: Array("\r\n".utf8), omittingEmptySubsequences: false)
    var headers: [(name: String, value: String)] = []
    for line in lines.dropFirst() {
        let text = String(decoding: line, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { continue }
        headers.append((text[..<colon].lowercased(), text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
    }
    let length = headers.first { $0.name == "content-length" }.flatMap { Int($0.value) } ?? 0
    var complete = true
    while data.count < headEnd + 4 + length {
        guard readMore(&data) else { complete = false; break }
    }
    let request = RawRequest(requestLine: Array(lines.first ?? []), headers: headers, bodyComplete: complete)
    data.removeFirst(min(data.count, headEnd + 4 + length))
    return request
}

/// Sends all of `bytes` (false when the connection failed first).
@discardableResult
package func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return false }
        sent += n
    }
    return true
}

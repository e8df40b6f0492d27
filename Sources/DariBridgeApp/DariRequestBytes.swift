import DariBridge
import NIOCore
import NIOHTTP1

/// The bytes of one POST to Dari, built in one buffer: request line, headers, body.
///
/// Written by hand rather than through NIOHTTP1's `HTTPRequestEncoder` and
/// `NIOHTTPRequestHeadersValidator`: the request is always the same shape (POST, six fixed
/// headers and the trace context, a Content-Length body), and the encoder path (three
/// writes, each through the validator, the response decoder's write observation and the
/// encoder, with `HTTPHeaders` built for it) cost about 30,000 instructions per message
/// under callgrind, a sixth of the worker's total (README, Benchmark). The validator's
/// checks are kept here: the target and `Host` are the policy's approval (printable ASCII
/// without spaces, by its grammar, checked again), a header name must be a token and a
/// value must not hold CR, LF, NUL or another control character; anything else refuses
/// the request before a connection is asked for. NIOHTTP1 still parses every answer.
enum DariRequestBytes {
    static func encode(_ approved: ApprovedURL, body: [UInt8], traceHeaders: TraceHeaders, userAgent: String,
                       allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(DariRequestRefused) -> ByteBuffer {
        guard isTargetOrHost(approved.requestTarget.utf8), isTargetOrHost(approved.host.utf8) else {
            throw DariRequestRefused(reason: "the approved request target or host is not printable ASCII")
        }
        var traceBytes = 0
        for (name, value) in traceHeaders {
            guard isToken(name.utf8), isFieldValue(value.utf8) else {
                throw DariRequestRefused(reason: "a trace header is not a valid HTTP field")
            }
            // What a tracer injects must not stand in for the request's own framing or headers.
            guard !reservedNames.contains(name.lowercased()) else {
                throw DariRequestRefused(reason: "a trace header would replace one of the request's own headers")
            }
            traceBytes += name.utf8.count + value.utf8.count + 4
        }
        var out = allocator.buffer(capacity: 192 + approved.requestTarget.utf8.count + approved.host.utf8.count
                                   + userAgent.utf8.count + traceBytes + body.count)
        out.writeStaticString("POST ")
        out.writeString(approved.requestTarget)
        out.writeStaticString(" HTTP/1.1\r\nHost: ")
        // `ApprovedURL.hostHeader`, written without building the string.
        out.writeString(approved.host)
        if approved.port != approved.defaultPort {
            out.writeStaticString(":")
            out.writeString(String(approved.port))
        }
        out.writeStaticString("\r\nUser-Agent: ")
        out.writeString(userAgent)
        out.writeStaticString("\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ")
        out.writeString(String(body.count))
        out.writeStaticString("\r\n")
        // Sorted: the same context gives the same request bytes.
        for (name, value) in traceHeaders.count < 2 ? Array(traceHeaders) : traceHeaders.sorted(by: { $0.key < $1.key }) {
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        out.writeBytes(body)
        return out
    }

    /// The headers this request writes itself, and those that change how a message is framed.
    static let reservedNames: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "user-agent",
                                             "content-type", "accept", "expect", "upgrade", "te", "trailer", "keep-alive"]

    /// Printable ASCII, no space (what the policy's grammar lets through).
    static func isTargetOrHost(_ bytes: String.UTF8View) -> Bool {
        // Over the contiguous bytes when the string has them (native strings do): about a
        // tenth of the cost of walking the UTF-8 view.
        bytes.withContiguousStorageIfAvailable { b in !b.isEmpty && b.allSatisfy { $0 > 0x20 && $0 < 0x7F } }
            ?? (!bytes.isEmpty && bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F })
    }

    /// RFC 9110 token: `!#$%&'*+-.^_`|~`, digits, letters.
    static func isToken(_ bytes: String.UTF8View) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// RFC 9110 field value: visible characters, space and tab inside, no CR, LF, NUL or other
    /// control characters, no leading or trailing white space.
    static func isFieldValue(_ bytes: String.UTF8View) -> Bool {
        guard let first = bytes.first, let last = bytes.last else { return true }
        if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 { return false }
        return bytes.allSatisfy { c in c == 0x09 || (c >= 0x20 && c != 0x7F) }
    }
}

/// NIOHTTP1's response decoder without its write observation: `HTTPResponseDecoder` watches
/// the requests written through it (for a HEAD request's body-less answer, and to call an
/// answer without a request unsolicited), which needs the requests to be written as
/// `HTTPClientRequestPart`s. The request is written as bytes here, so `DariExchangeHandler`
/// tells the decoder about each request (`HTTPResponseDecoder.write(data: .head)`) itself.
struct DariResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart
    let decoder: HTTPResponseDecoder

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try decoder.decode(context: context, buffer: &buffer)
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }

    mutating func decoderAdded(context: ChannelHandlerContext) { decoder.decoderAdded(context: context) }
    mutating func decoderRemoved(context: ChannelHandlerContext) { decoder.decoderRemoved(context: context) }
}

import DariBridge
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// One keep-alive HTTP/1.1 connection to Dari, one request at a time: the last handler of
/// the channel (after TLS and NIOHTTP1's response decoder). It writes the request's bytes
/// (`DariRequestBytes`) in one write, gathers the answer (status, `Retry-After`, at most
/// `maxBodyBytes` of body) and resumes the waiting task once, from the event loop, with the
/// whole answer: one hop per request, no futures on the way.
///
/// Everything below runs on the channel's event loop; other threads only reach it through
/// `exchange`, which hops there (hence `@unchecked Sendable`).
final class DariExchangeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = ByteBuffer

    /// What the response decoder is told of each request: a POST (it only needs the method).
    private static let postHead = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")
    /// Set on the event loop when the channel is set up (`DariConnectionPool.connect`).
    var responseDecoder: HTTPResponseDecoder?

    /// The connection was found closed before a byte of the request was written: safe to
    /// send the request on another connection (nothing reached Dari). `reason`: the error
    /// that closed it, if one did (a failed TLS handshake of a new connection).
    struct Stale: Error {
        var reason: String?
    }

    /// One request's cancellation, from the task's cancellation handler (any thread) to the
    /// handler the request was given to (on its event loop), or to the `start` still to come.
    final class Token: Sendable {
        private let state = NIOLockedValueBox<(cancelled: Bool, handler: DariExchangeHandler?)>((false, nil))

        func cancel() {
            let handler = state.withLockedValue { s -> DariExchangeHandler? in
                s.cancelled = true
                return s.handler
            }
            if let handler { handler.eventLoop.execute { handler.cancel(self) } }
        }

        /// When the request reaches `handler`: false when it was cancelled before.
        fileprivate func attach(_ handler: DariExchangeHandler) -> Bool {
            state.withLockedValue { s in
                s.handler = handler
                return !s.cancelled
            }
        }
    }

    let eventLoop: any EventLoop
    let maxBodyBytes: Int
    /// Called (on the event loop) when the answer left the connection reusable; false = close it.
    private let release: @Sendable (DariExchangeHandler) -> Bool
    // The pool forgets the connection on its channel's closeFuture (DariConnectionPool.setUp).

    private var context: ChannelHandlerContext?
    private var closed = false
    private var tlsClosedUncleanly = false
    /// The first error seen while no request was waiting (reported by the next `start`).
    private var idleFailure: String?
    private var continuation: UnsafeContinuation<DariResponse, any Error>?
    private var token: Token?
    /// The request's deadline, and the one timer of this connection. The timer is not
    /// cancelled when an answer comes in (cancelling a scheduled callback searches the event
    /// loop's heap: ~4,700 instructions a request at 64 in flight): it stays armed, and when
    /// it fires it times out the request in flight if that one's deadline passed, or re-arms
    /// itself for it, or (no request) disarms. With one timeout for all requests it fires
    /// about once per timeout per busy connection.
    private var requestDeadline: NIODeadline?
    private var timer: NIOScheduledCallback?
    private var timerAt: NIODeadline?
    private var status = 0
    private var headSeen = false
    private var keepAlive = true
    private var retryAfter: String?
    private var body: [UInt8] = []

    init(eventLoop: any EventLoop, maxBodyBytes: Int,
         release: @escaping @Sendable (DariExchangeHandler) -> Bool) {
        self.eventLoop = eventLoop
        self.maxBodyBytes = maxBodyBytes
        self.release = release
    }

    /// Sends `head` and `body` and waits for the whole answer. Throws `Stale` when the
    /// connection was closed before anything was written, `CancellationError` when the task
    /// is cancelled (the connection is then closed: its answer would belong to nobody),
    /// `DariTransportError` for everything else that is not an HTTP answer.
    func exchange(request: ByteBuffer, deadline: NIODeadline) async throws -> DariResponse {
        let token = Token()
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                eventLoop.execute { self.start(request: request, deadline: deadline, token: token, continuation: continuation) }
            }
        } onCancel: {
            token.cancel()
        }
    }

    // MARK: event loop

    /// On the event loop: the request goes out, or (closed: `Stale`; cancelled or past its
    /// deadline: nothing written, the connection given back) it does not.
    func start(request: ByteBuffer, deadline: NIODeadline, token: Token,
               continuation: UnsafeContinuation<DariResponse, any Error>) {
        eventLoop.assertInEventLoop()
        guard let context, let responseDecoder, !closed, context.channel.isActive else {
            continuation.resume(throwing: Stale(reason: idleFailure))
            return
        }
        let live = token.attach(self)
        if !live || deadline <= .now() {
            // Nothing written: the connection goes back as it was (a deadline that passed
            // while the task waited for a connection or a core must not still send the POST).
            if !release(self) { context.close(promise: nil) }
            continuation.resume(throwing: live ? DariTransportError(reason: "request timed out") : CancellationError())
            return
        }
        self.continuation = continuation
        self.token = token
        requestDeadline = deadline
        if timerAt.map({ $0 > deadline }) ?? true {
            timer?.cancel()
            guard arm(at: deadline) else {
                finish(.failure(DariTransportError(reason: "request timed out")), reuse: false)
                return
            }
        }
        // The decoder pairs the next answer with this request (and calls any other unsolicited).
        responseDecoder.write(data: .head(Self.postHead))
        // A failed write closes the channel, and channelInactive fails the request.
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    fileprivate func cancel(_ token: Token) {
        if self.token === token { finish(.failure(CancellationError()), reuse: false) }
    }

    private func arm(at deadline: NIODeadline) -> Bool {
        timer = try? eventLoop.scheduleCallback(at: deadline, handler: Timeout(handler: self))
        timerAt = timer == nil ? nil : deadline
        return timer != nil
    }

    fileprivate func timerFired() {
        timer = nil
        timerAt = nil
        guard continuation != nil, let requestDeadline else { return }
        if requestDeadline <= .now() {
            finish(.failure(DariTransportError(reason: "request timed out")), reuse: false)
        } else if !arm(at: requestDeadline) {
            finish(.failure(DariTransportError(reason: "request timed out")), reuse: false)
        }
    }

    /// Closes the connection unless a request is on it (the pool took it out of its idle list first).
    func closeIdle() {
        eventLoop.execute {
            if self.continuation == nil { self.context?.close(promise: nil) }
        }
    }

    /// Resumes the waiting task with `result`; the connection goes back to the pool when
    /// `reuse` and the answer allows it, else it is closed.
    private func finish(_ result: Result<DariResponse, any Error>, reuse: Bool) {
        guard let continuation else { return }
        self.continuation = nil
        self.token = nil
        requestDeadline = nil
        status = 0
        headSeen = false
        tlsClosedUncleanly = false
        retryAfter = nil
        body = []
        let again = reuse && keepAlive && !closed && release(self)
        keepAlive = true
        if !again { context?.close(promise: nil) }
        continuation.resume(with: result)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The context holds this handler for good: dropping it here breaks the cycle once the
    /// channel is closed and its pipeline torn down.
    func handlerRemoved(context: ChannelHandlerContext) {
        closed = true
        timer?.cancel()
        timer = nil
        timerAt = nil
        finish(.failure(DariTransportError(reason: "connection closed before the answer")), reuse: false)
        self.context = nil
        responseDecoder = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard continuation != nil else {
            // An answer nobody asked for: this connection cannot be trusted to pair answers.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            headSeen = true
            status = Int(head.status.code)
            retryAfter = head.headers.first(name: "Retry-After")
            keepAlive = head.isKeepAlive
            if status < 200 {
                // 101 (the decoder drops the other 1xx): no answer follows on this connection.
                keepAlive = false
                finish(.success(DariResponse(status: status, body: [], retryAfter: retryAfter)), reuse: false)
            }
        case .body(let part):
            if body.count + part.readableBytes > maxBodyBytes {
                // Too large to be a Dari answer: keep the status, drop the body, stop reading
                // (the connection is closed), so an endless body cannot turn an answer into a
                // timeout and a second POST.
                finish(.success(DariResponse(status: status, body: [], retryAfter: retryAfter)), reuse: false)
                return
            }
            if body.isEmpty { body.reserveCapacity(part.readableBytes) }
            body.append(contentsOf: part.readableBytesView)
        case .end:
            if tlsClosedUncleanly {
                // A close-delimited body cut by a close without close_notify may be truncated.
                finish(.failure(DariTransportError(reason: "TLS connection closed without close_notify in the middle of the answer")),
                       reuse: false)
                return
            }
            let answer = DariResponse(status: status, body: body, retryAfter: retryAfter)
            // An answer that came before the whole request was written (an early 4xx): the
            // rest of the request would go out ahead of the next one, so the connection is not
            // reused.
            let written = ((try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0) == 0
            finish(.success(answer), reuse: written)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A TLS peer that closes without close_notify: the close itself decides (a
        // close-delimited body ends there, anything else fails in channelInactive).
        if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl {
            if continuation != nil && headSeen { tlsClosedUncleanly = true }
            return
        }
        if continuation == nil {
            // Nobody waits (a TLS handshake that failed before the request was handed over,
            // an idle connection's error): kept for the request that comes to find it closed.
            if idleFailure == nil { idleFailure = DariClient.describe(error) }
            context.close(promise: nil)
            return
        }
        // The decoder's word for a close before the announced end of the body.
        if let parser = error as? HTTPParserError, case .invalidEOFState = parser, headSeen {
            finish(.failure(DariTransportError(reason: "connection closed in the middle of the answer")), reuse: false)
            context.close(promise: nil)
            return
        }
        finish(.failure(DariTransportError(reason: DariClient.describe(error))), reuse: false)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        timer?.cancel()
        timer = nil
        timerAt = nil
        finish(.failure(DariTransportError(reason: headSeen ? "connection closed in the middle of the answer"
                                                            : "connection closed before the answer")), reuse: false)
        context.fireChannelInactive()
    }

    private struct Timeout: NIOScheduledCallbackHandler, @unchecked Sendable {
        let handler: DariExchangeHandler
        func handleScheduledCallback(eventLoop: some EventLoop) { handler.timerFired() }
    }
}

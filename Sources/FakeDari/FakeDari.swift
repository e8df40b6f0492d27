// FakeDari: an in-process HTTP/1.1 server that plays Dari's resume endpoint in
// tests and in the benchmark.
//
// - Listens on 127.0.0.1 (never on other interfaces).
// - HTTP/1.1 keep-alive and pipelining (NIO's HTTPServerPipelineHandler answers
//   pipelined requests in order), many concurrent connections.
// - Request bodies are aggregated in full (a few MB is fine) when recording.
// - Replies can be scripted per id (the last path component of the URI) and
//   delayed; a delay is scheduled on the event loop, never a blocking sleep.
// - State lives behind a `Mutex`, so every method may be called from any task.

import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

package final class FakeDari: Sendable {

    /// One scripted (or default) answer.
    package struct Reply: Sendable {
        package var status: Int
        /// Extra response headers. `Content-Length` is always computed from `body`
        /// (a scripted one is ignored); a scripted `Content-Type` replaces the
        /// default `application/json`; a scripted `Connection: close` makes the
        /// server close the connection after this reply.
        package var headers: [(String, String)]
        package var body: String
        /// How long to wait (after the request is complete) before answering.
        package var delay: Duration

        package init(
            status: Int = 200,
            headers: [(String, String)] = [],
            body: String = #"{"ok":true}"#,
            delay: Duration = .zero
        ) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
        }

        package static func ok(_ body: String = #"{"ok":true}"#) -> Reply {
            Reply(status: 200, body: body)
        }
    }

    /// A request as FakeDari received it (only kept when started with `record: true`).
    package struct RecordedRequest: Sendable {
        package var method: String
        package var uri: String
        /// Last non-empty path component of the URI, query and fragment removed.
        package var id: String
        /// Headers in the order and spelling received.
        package var headers: [(String, String)]
        package var body: [UInt8]
        /// When the request head arrived.
        package var receivedAt: ContinuousClock.Instant

        package init(
            method: String,
            uri: String,
            id: String,
            headers: [(String, String)],
            body: [UInt8],
            receivedAt: ContinuousClock.Instant
        ) {
            self.method = method
            self.uri = uri
            self.id = id
            self.headers = headers
            self.body = body
            self.receivedAt = receivedAt
        }

        /// The first header named `name`, compared case-insensitively.
        package func header(_ name: String) -> String? {
            let wanted = name.lowercased()
            return headers.first { $0.0.lowercased() == wanted }?.1
        }

        /// The body decoded as UTF-8 (lossy), handy in assertions.
        package var bodyString: String { String(decoding: body, as: UTF8.self) }
    }

    private let store: Store
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let isShutDown = Mutex(false)

    package let port: Int
    package var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(store: Store, group: MultiThreadedEventLoopGroup, serverChannel: any Channel, port: Int) {
        self.store = store
        self.group = group
        self.serverChannel = serverChannel
        self.port = port
    }

    /// Starts listening on 127.0.0.1:`port` (0 = ephemeral).
    ///
    /// - Parameters:
    ///   - defaultReply: answers any id that has no script.
    ///   - record: `false` keeps only counts (no request bodies, no list of
    ///     requests), so long benchmark runs do not grow in memory. In that mode
    ///     `requestCount` is exact, but `requestCount(id:)` is only tracked for
    ///     ids that have a script (it returns 0 for the others), `requests(id:)`
    ///     and `allRequests` are empty.
    ///   - eventLoopThreads: threads of the server's own event-loop group.
    package static func start(
        port: Int = 0,
        defaultReply: Reply = .ok(),
        record: Bool = true,
        eventLoopThreads: Int = 1
    ) async throws -> FakeDari {
        precondition(eventLoopThreads >= 1, "eventLoopThreads must be at least 1")
        precondition((0...65535).contains(port), "port must be in 0...65535")
        let store = Store(defaultReply: defaultReply, record: record)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoopThreads)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(store: store))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        guard let boundPort = channel.localAddress?.port else {
            try? await channel.close().get()
            try? await group.shutdownGracefully()
            throw FakeDariError.noLocalAddress
        }
        return FakeDari(store: store, group: group, serverChannel: channel, port: boundPort)
    }

    /// Successive requests whose id is `id` get these replies in order; once used
    /// up the last one repeats. Scripting an id again restarts from the first
    /// reply; an empty list removes the script (the default reply answers again).
    package func script(id: String, _ replies: [Reply]) {
        store.script(id: id, replies)
    }

    /// Requests received for `id`, in arrival order (empty when not recording).
    package func requests(id: String) -> [RecordedRequest] {
        store.state.withLock { state in state.recorded.filter { $0.id == id } }
    }

    /// Every request received, in arrival order (empty when not recording).
    package var allRequests: [RecordedRequest] {
        store.state.withLock { $0.recorded }
    }

    /// Number of complete requests received.
    package var requestCount: Int {
        store.state.withLock { $0.total }
    }

    /// Number of complete requests received for `id`.
    package func requestCount(id: String) -> Int {
        store.state.withLock { $0.countByID[id] ?? 0 }
    }

    /// Stops listening and closes every connection. Safe to call more than once.
    package func shutdown() async throws {
        let alreadyDown = isShutDown.withLock { down in
            defer { down = true }
            return down
        }
        if alreadyDown { return }
        do {
            try await serverChannel.close().get()
        } catch ChannelError.alreadyClosed {
            // fine
        }
        try await group.shutdownGracefully()
    }
}

package enum FakeDariError: Error, Sendable {
    case noLocalAddress
}

// MARK: - Shared state

private final class Store: Sendable {
    struct Script: Sendable {
        var replies: [Reply]
        var next: Int
    }

    struct State: Sendable {
        var scripts: [String: Script] = [:]
        var recorded: [FakeDari.RecordedRequest] = []
        var countByID: [String: Int] = [:]
        var total = 0
    }

    typealias Reply = FakeDari.Reply

    let defaultReply: Reply
    let record: Bool
    let state = Mutex(State())

    init(defaultReply: Reply, record: Bool) {
        self.defaultReply = defaultReply
        self.record = record
    }

    func script(id: String, _ replies: [Reply]) {
        state.withLock { state in
            if replies.isEmpty {
                state.scripts[id] = nil
            } else {
                state.scripts[id] = Script(replies: replies, next: 0)
            }
        }
    }

    /// Counts (and records) one complete request and picks its reply.
    func handle(_ request: FakeDari.RecordedRequest) -> Reply {
        state.withLock { state in
            state.total += 1
            var reply = defaultReply
            if var script = state.scripts[request.id] {
                reply = script.replies[min(script.next, script.replies.count - 1)]
                if script.next < script.replies.count { script.next += 1 }
                state.scripts[request.id] = script
                state.countByID[request.id, default: 0] += 1
            } else if record {
                state.countByID[request.id, default: 0] += 1
            }
            if record {
                state.recorded.append(request)
            }
            return reply
        }
    }
}

// MARK: - Channel handler

private final class RequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let store: Store
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var receivedAt = ContinuousClock.now
    private var pendingReply: Scheduled<Void>?

    init(store: Store) {
        self.store = store
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = nil
            self.receivedAt = .now
        case .body(var chunk):
            // Without recording the body is never looked at: drop it as it comes.
            if store.record {
                body.setOrWriteBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let bodyBytes = body.map { Array($0.readableBytesView) } ?? []
            body = nil
            let request = FakeDari.RecordedRequest(
                method: head.method.rawValue,
                uri: head.uri,
                id: Self.id(fromURI: head.uri),
                headers: head.headers.map { ($0.name, $0.value) },
                body: bodyBytes,
                receivedAt: receivedAt
            )
            let reply = store.handle(request)
            let keepAlive = head.isKeepAlive
            let version = head.version
            if reply.delay > .zero {
                pendingReply = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(reply.delay)) {
                    self.pendingReply = nil
                    self.respond(context: context, reply: reply, version: version, keepAlive: keepAlive)
                }
            } else {
                respond(context: context, reply: reply, version: version, keepAlive: keepAlive)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pendingReply?.cancel()
        pendingReply = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pendingReply?.cancel()
        pendingReply = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext, reply: FakeDari.Reply, version: HTTPVersion, keepAlive: Bool) {
        guard context.channel.isActive else { return }
        var buffer = context.channel.allocator.buffer(capacity: reply.body.utf8.count)
        buffer.writeString(reply.body)

        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        var close = !keepAlive
        for (name, value) in reply.headers {
            switch name.lowercased() {
            case "content-length":
                continue
            case "content-type":
                headers.replaceOrAdd(name: "Content-Type", value: value)
            case "connection":
                if value.lowercased().contains("close") { close = true }
            default:
                headers.add(name: name, value: value)
            }
        }
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        if close {
            headers.add(name: "Connection", value: "close")
        } else if version.major == 1 && version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }

        let status = HTTPResponseStatus(statusCode: reply.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            written.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Last non-empty path component, query and fragment removed ("/resume/abc?x=1" -> "abc").
    static func id(fromURI uri: String) -> String {
        var path = Substring(uri)
        if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            path = path[..<cut]
        }
        return path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? ""
    }
}

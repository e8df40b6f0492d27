import DariBridge
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Keep-alive HTTP/1.1 connections to Dari, per origin (scheme, host, port as approved).
///
/// A request takes the most recently used idle connection of its origin or opens a new one;
/// the pipeline never has more than `concurrency` requests in flight, so there are never more
/// connections than that per origin, and nothing queues. An idle connection is closed after
/// `idleTimeout` (by one sweep task while idle connections exist, not a timer per request),
/// or when the server closes it. A new connection's peer address is checked
/// against the policy (`DariClient+AddressCheck.swift`) before TLS starts and before a byte
/// of a request is written.
final class DariConnectionPool: Sendable {
    /// Dari's answers have a few short headers.
    static let decoderLimits: NIOHTTPDecoderLimitConfiguration = {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 16 * 1024
        limits.maxHeaderListSize = 64 * 1024
        limits.maxHeaderFieldCount = 256
        return limits
    }()

    struct Origin: Hashable, Sendable {
        var scheme: String
        var host: String
        var port: Int
    }

    private struct State {
        /// Oldest first; a request takes the last (most recently used).
        var idle: [Origin: [(handler: DariExchangeHandler, since: NIODeadline)]] = [:]
        var sweepScheduled = false
        var open: [ObjectIdentifier: (DariExchangeHandler, any Channel)] = [:]
        var shutDown = false
        var tls: NIOSSLContext?
    }

    private let state = NIOLockedValueBox(State())
    private let group: any EventLoopGroup
    private let policy: URLPolicy
    private let maxIdlePerOrigin: Int
    private let connectTimeout: TimeAmount
    private let maxBodyBytes: Int
    private let tlsConfiguration: TLSConfiguration
    private let idleTimeout: TimeAmount

    init(group: any EventLoopGroup, policy: URLPolicy, maxIdlePerOrigin: Int, connectTimeout: TimeAmount,
         maxBodyBytes: Int, tlsConfiguration: TLSConfiguration, idleTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.group = group
        self.policy = policy
        self.maxIdlePerOrigin = max(1, maxIdlePerOrigin)
        self.connectTimeout = connectTimeout
        self.maxBodyBytes = maxBodyBytes
        self.tlsConfiguration = tlsConfiguration
    }

    /// The most recently used idle connection of `origin`, or nil.
    func takeIdle(_ origin: Origin) -> DariExchangeHandler? {
        let oldest = NIODeadline.now() - idleTimeout
        let (taken, expired) = state.withLockedValue { state -> (DariExchangeHandler?, [DariExchangeHandler]) in
            guard !state.shutDown, let last = state.idle[origin]?.popLast() else { return (nil, []) }
            if last.since >= oldest { return (last.handler, []) }
            // The most recent is too old: so are all the others.
            let expired = [last.handler] + (state.idle[origin] ?? []).map(\.handler)
            state.idle[origin] = nil
            return (nil, expired)
        }
        for handler in expired { handler.closeIdle() }
        return taken
    }

    /// A new connection to `origin` (checked, with TLS when the scheme is https) and the
    /// request on it, in one go on the event loop: the task waits once, for the answer (a
    /// hop back to the task between connect and write would leave the request waiting for a
    /// free thread of Swift's pool, with its deadline running).
    func connectAndExchange(_ origin: Origin, request: ByteBuffer, deadline: NIODeadline) async throws -> DariResponse {
        if state.withLockedValue({ $0.shutDown }) { throw DariTransportError(reason: "the HTTP client is shut down") }
        let tls = origin.scheme == "https" ? try tlsContext() : nil
        let remaining = deadline - .now()
        guard remaining > .zero else { throw DariTransportError(reason: "request timed out") }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(min(connectTimeout, remaining))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        // An IPv6 literal is approved with its brackets (the form of the Host header).
        let host = origin.host.hasPrefix("[") && origin.host.hasSuffix("]") ? String(origin.host.dropFirst().dropLast()) : origin.host
        let serverName = IPAddress(parsing: host) == nil ? host : nil
        let token = DariExchangeHandler.Token()
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<DariResponse, any Error>) in
                bootstrap.connect(host: host, port: origin.port).whenComplete { result in
                    switch result {
                    case .failure(let error):
                        continuation.resume(throwing: error)
                    case .success(let channel):
                        do {
                            let handler = try self.setUp(channel, origin: origin, tls: tls, serverName: serverName)
                            handler.start(request: request, deadline: deadline, token: token, continuation: continuation)
                        } catch {
                            channel.close(promise: nil)
                            continuation.resume(throwing: error)
                        }
                    }
                }
            }
        } onCancel: {
            token.cancel()
        }
    }

    /// On the new channel's event loop: the address check, registration, the pipeline.
    private func setUp(_ channel: any Channel, origin: Origin, tls: NIOSSLContext?, serverName: String?) throws -> DariExchangeHandler {
        channel.eventLoop.assertInEventLoop()
        if let refusal = Self.addressRefusal(channel.remoteAddress, policy) {
            throw DariRequestRefused(reason: refusal)
        }
        let handler = DariExchangeHandler(
            eventLoop: channel.eventLoop, maxBodyBytes: maxBodyBytes,
            release: { [weak self] handler in self?.release(handler, to: origin) ?? false })
        let registered = state.withLockedValue { state -> Bool in
            guard !state.shutDown else { return false }
            state.open[ObjectIdentifier(handler)] = (handler, channel)
            return true
        }
        guard registered else { throw DariTransportError(reason: "the HTTP client is shut down") }
        // Forgotten when the channel is closed, whenever and however that happens (also
        // before the handler was added, when channelInactive never reaches it).
        channel.closeFuture.whenComplete { [weak self] _ in self?.forget(handler) }
        do {
            let pipeline = channel.pipeline.syncOperations
            if let tls {
                // A host name is sent as SNI and verified against the certificate; an IP
                // literal is verified against the certificate's IP addresses.
                try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
            }
            let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop,
                                              limitConfiguration: Self.decoderLimits)
            handler.responseDecoder = decoder
            try pipeline.addHandler(ByteToMessageHandler(DariResponseDecoder(decoder: decoder)))
            try pipeline.addHandler(handler)
        } catch {
            forget(handler)
            throw DariTransportError(reason: DariClient.describe(error))
        }
        return handler
    }

    /// Closes the idle connections; the busy ones close when their answer is in.
    func shutdown() async {
        let channels = state.withLockedValue { state -> [any Channel] in
            state.shutDown = true
            let idle = state.idle.values.flatMap { $0 }
            state.idle = [:]
            return idle.compactMap { state.open[ObjectIdentifier($0.handler)]?.1 }
        }
        await withTaskGroup(of: Void.self) { group in
            for channel in channels { group.addTask { try? await channel.close() } }
        }
    }

    private func release(_ handler: DariExchangeHandler, to origin: Origin) -> Bool {
        let now = NIODeadline.now()
        let (kept, sweep) = state.withLockedValue { state -> (Bool, Bool) in
            guard !state.shutDown, state.open[ObjectIdentifier(handler)] != nil else { return (false, false) }
            guard (state.idle[origin]?.count ?? 0) < maxIdlePerOrigin else { return (false, false) }
            state.idle[origin, default: []].append((handler, now))
            if state.sweepScheduled { return (true, false) }
            state.sweepScheduled = true
            return (true, true)
        }
        if sweep { scheduleSweep() }
        return kept
    }

    /// Closes the connections idle for `idleTimeout`; runs again while idle ones are left.
    private func scheduleSweep() {
        group.next().scheduleTask(in: idleTimeout) { [weak self] in self?.sweep() }
    }

    private func sweep() {
        let oldest = NIODeadline.now() - idleTimeout
        let (expired, again) = state.withLockedValue { state -> ([DariExchangeHandler], Bool) in
            var expired: [DariExchangeHandler] = []
            for (origin, list) in state.idle {
                let cut = list.firstIndex { $0.since >= oldest } ?? list.endIndex
                expired += list[..<cut].map(\.handler)
                state.idle[origin] = cut == list.endIndex ? nil : Array(list[cut...])
            }
            state.sweepScheduled = !state.shutDown && !state.idle.isEmpty
            return (expired, state.sweepScheduled)
        }
        for handler in expired { handler.closeIdle() }
        if again { scheduleSweep() }
    }

    private func forget(_ handler: DariExchangeHandler) {
        state.withLockedValue { state in
            state.open[ObjectIdentifier(handler)] = nil
            for (origin, list) in state.idle where list.contains(where: { $0.handler === handler }) {
                let rest = list.filter { $0.handler !== handler }
                state.idle[origin] = rest.isEmpty ? nil : rest
            }
        }
    }

    /// One TLS context for all https connections, made on first use (it loads the trust roots).
    private func tlsContext() throws -> NIOSSLContext {
        try state.withLockedValue { state in
            if let tls = state.tls { return tls }
            do {
                let tls = try NIOSSLContext(configuration: tlsConfiguration)
                state.tls = tls
                return tls
            } catch {
                throw DariTransportError(reason: "TLS set-up failed: \(error)")
            }
        }
    }
}

import HummingbirdCore
import NIOCore
import Synchronization

/// Open connections of one server, shared by the `ConnectionGuard`s of its channels.
package final class ConnectionCount: Sendable {
    package let limit: Int
    private let open = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)

    package init(limit: Int) { self.limit = max(1, limit) }

    /// Connections held now (at most `limit` past the instant a new one is refused).
    package var current: Int { open.load(ordering: .relaxed) }
    /// Connections closed on arrival because `limit` were open.
    package var refusedTotal: Int { refused.load(ordering: .relaxed) }

    /// True when the connection may stay; it is counted either way (`release` it).
    func admit() -> Bool {
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
        refused.add(1, ordering: .relaxed)
        return false
    }

    func release() { open.subtract(1, ordering: .relaxed) }
}

/// One per connection, after the HTTP decoder (Hummingbird's
/// `additionalChannelHandlers`). Hummingbird's own connection limit
/// (`availableConnectionsDelegate`) stops accepting at the cap, so further
/// clients wait in the kernel's listen backlog with no answer; this guard
/// accepts and closes them at once instead. It also closes a connection
/// whose request body passes `maxBodyBytes` (Hummingbird would read and drop
/// any amount), and one that stays unwritable (a client that sends requests
/// and never reads the answers) for `stallTimeout`; Hummingbird's idle timeout
/// does not run while a response is being written.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPConnectionStateHandler.InboundIn
    typealias InboundOut = HTTPConnectionStateHandler.InboundIn

    let count: ConnectionCount
    let maxBodyBytes: Int
    let stallTimeout: TimeAmount
    private var counted = false
    private var bodyBytes = 0
    private var stalled: Scheduled<Void>?

    init(count: ConnectionCount, maxBodyBytes: Int, stallTimeout: TimeAmount) {
        self.count = count
        self.maxBodyBytes = maxBodyBytes
        self.stallTimeout = stallTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arrive(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arrive(context)
        context.fireChannelActive()
    }

    private func arrive(_ context: ChannelHandlerContext) {
        guard !counted else { return }
        counted = true
        if !count.admit() { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        leave()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        leave()
    }

    private func leave() {
        stalled?.cancel()
        stalled = nil
        if counted {
            counted = false
            count.release()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > maxBodyBytes {
                context.close(promise: nil)
                return
            }
        case .end:
            break
        }
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stalled?.cancel()
            stalled = nil
        } else if stalled == nil {
            let channel = context.channel
            stalled = context.eventLoop.scheduleTask(in: stallTimeout) { channel.close(promise: nil) }
        }
        context.fireChannelWritabilityChanged()
    }
}

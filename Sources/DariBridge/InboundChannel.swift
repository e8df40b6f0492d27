import Synchronization

/// The deliveries on their way from the broker adapter's thread to the
/// pipeline: many producers, one consumer, unbounded (the broker's prefetch
/// bounds it), in order. Once finished it takes nothing more; what it holds is
/// still handed out, then the sequence ends.
///
/// This replaces an `AsyncStream<InboundMessage>`. The standard library's
/// stream is generic code that is not specialised for the element type: each
/// `yield` and each `next` looked up type metadata at run time (Optional,
/// CheckedContinuation, Array of the element), and its buffer gave out
/// elements with `Array.removeFirst` (callgrind: about 8,000 instructions a
/// message, a twentieth of the worker). Here the element type is fixed, the
/// buffer is a plain array read from a moving head, and a waiting consumer is
/// resumed directly by the producer.
package final class InboundChannel: AsyncSequence, Sendable {
    package typealias Element = InboundMessage

    private struct State {
        var buffer: [InboundMessage] = []
        /// The next element to hand out: `buffer[head...]` are waiting.
        var head = 0
        var waiter: UnsafeContinuation<InboundMessage?, Never>?
        var finished = false

        mutating func take() -> InboundMessage? {
            guard head < buffer.count else { return nil }
            let m = buffer[head]
            head += 1
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024 && head * 2 >= buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return m
        }
    }

    private let state = Mutex(State())

    package init() {}

    /// Hands `message` to the consumer; false once the channel is finished (the
    /// message was not taken).
    @discardableResult
    package func yield(_ message: InboundMessage) -> Bool {
        let (accepted, waiter): (Bool, UnsafeContinuation<InboundMessage?, Never>?) = state.withLock { s in
            if s.finished { return (false, nil) }
            if let w = s.waiter {
                s.waiter = nil
                return (true, w)
            }
            s.buffer.append(message)
            return (true, nil)
        }
        waiter?.resume(returning: message)
        return accepted
    }

    /// Takes nothing more; the consumer gets what is held, then the end.
    package func finish() {
        let waiter = state.withLock { s -> UnsafeContinuation<InboundMessage?, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Messages held, not yet taken by the consumer.
    package var count: Int { state.withLock { $0.buffer.count - $0.head } }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let channel: InboundChannel

        /// The next message; nil when the channel is finished and empty, or when the
        /// waiting task is cancelled (which finishes the channel, as `AsyncStream` does).
        package mutating func next() async -> InboundMessage? {
            await channel.next()
        }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: self) }

    private enum Taken {
        case message(InboundMessage)
        case end
        case wait
    }

    private func next() async -> InboundMessage? {
        let now: Taken = state.withLock { s in
            if let m = s.take() { return .message(m) }
            return s.finished ? .end : .wait
        }
        switch now {
        case .message(let m): return m
        case .end: return nil
        case .wait: break
        }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<InboundMessage?, Never>) in
                let ready: Taken = state.withLock { s in
                    if let m = s.take() { return .message(m) }
                    if s.finished || Task.isCancelled {
                        s.finished = true
                        return .end
                    }
                    // One consumer: AsyncStream traps on a second concurrent `next` too.
                    precondition(s.waiter == nil, "InboundChannel has one consumer")
                    s.waiter = c
                    return .wait
                }
                switch ready {
                case .message(let m): c.resume(returning: m)
                case .end: c.resume(returning: nil)
                case .wait: break
                }
            }
        } onCancel: {
            finish()
        }
    }
}

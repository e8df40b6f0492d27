import Synchronization

/// At most `limit` messages are handled at once; deliveries beyond that
/// (a prefetch above the concurrency) wait here, in arrival order, so the
/// next one is at hand the moment a slot frees.
final class DeliverySlots: Sendable {
    private struct State {
        var running = 0
        var waiting: [InboundMessage] = []
        var head = 0
        var closed = false
    }
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = max(1, limit) }

    /// true: a slot is taken for `message` (start it); false: it waits.
    func admit(_ message: InboundMessage) -> Bool {
        state.withLock { s in
            if s.running < limit {
                s.running += 1
                return true
            }
            s.waiting.append(message)
            return false
        }
    }

    /// A slot finished: the next waiting message (the slot stays taken), or
    /// nil (the slot is released).
    func next() -> InboundMessage? {
        state.withLock { s in
            if !s.closed, s.head < s.waiting.count {
                let m = s.waiting[s.head]
                s.head += 1
                if s.head > 64 && s.head * 2 > s.waiting.count {
                    s.waiting.removeFirst(s.head)
                    s.head = 0
                }
                return m
            }
            s.running -= 1
            return nil
        }
    }

    /// Stops handing out waiting messages and returns them all.
    func close() -> [InboundMessage] {
        state.withLock { s in
            s.closed = true
            let left = Array(s.waiting[s.head...])
            s.waiting = []
            s.head = 0
            return left
        }
    }

    var waitingCount: Int { state.withLock { $0.waiting.count - $0.head } }
}

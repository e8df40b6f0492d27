/// Identifies one signed delivery: its timestamp and the first 128 bits of
/// its (verified) signature, which covers the timestamp and the body.
package struct WebhookDeliveryKey: Hashable, Sendable {
    var timestamp: Int64
    var high: UInt64
    var low: UInt64

    package init(timestamp: Int64, signature: [UInt8]) {
        self.timestamp = timestamp
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 where i < signature.count { h = h << 8 | UInt64(signature[i]) }
        for i in 8..<16 where i < signature.count { l = l << 8 | UInt64(signature[i]) }
        high = h
        low = l
    }
}

/// The deliveries seen within the tolerance, so that one received twice is
/// published once. Bounded: at most `capacity` entries; an entry goes when its
/// timestamp leaves the tolerance (a replay is then refused as stale anyway),
/// or, when full, the oldest entry goes first (a duplicate of it would be
/// published again: at-least-once, never lost).
///
/// A delivery is `inFlight` from its claim until the broker confirmed it
/// (`stored`) or the publish failed (`release`: it is forgotten, so Dari's
/// retry publishes it). A value type: the receiver keeps it behind a lock.
package struct WebhookDeliveries: Sendable {
    package enum Claim: Sendable, Equatable {
        /// Not seen: publish it, then call `stored` or `release`.
        case new
        /// Seen and confirmed by the broker: answer 2xx, do not publish.
        case stored
        /// Another request is publishing it right now.
        case inFlight
    }

    struct Entry {
        var stored: Bool
        /// The claim's place in `order`: a later claim of a released key has
        /// its own, so the earlier slot leaving does not forget it.
        var sequence: Int
    }

    package let capacity: Int
    package let tolerance: Int64
    private var entries: [WebhookDeliveryKey: Entry] = [:]
    /// Claims in arrival order; the live ones are `order[head...]`.
    private var order: [WebhookDeliveryKey] = []
    private var head = 0
    /// Sequence number of `order[0]`.
    private var base = 0

    package init(capacity: Int = 100_000, tolerance: Int) {
        self.capacity = max(1, capacity)
        self.tolerance = Int64(tolerance)
    }

    /// Deliveries remembered (claimed, not released, not evicted).
    package var count: Int { entries.count }
    /// Slots in use (at most `capacity`).
    package var slots: Int { order.count - head }

    package mutating func claim(_ key: WebhookDeliveryKey, now: Int64) -> Claim {
        evict(now: now)
        if let entry = entries[key] { return entry.stored ? .stored : .inFlight }
        while slots >= capacity { popOldest() }
        entries[key] = Entry(stored: false, sequence: base + order.count)
        order.append(key)
        return .new
    }

    /// The broker confirmed it.
    package mutating func stored(_ key: WebhookDeliveryKey) {
        entries[key]?.stored = true
    }

    /// The publish failed: forget it (its slot goes in turn).
    package mutating func release(_ key: WebhookDeliveryKey) {
        if entries[key]?.stored == false { entries[key] = nil }
    }

    /// Drops the oldest slots whose timestamp left the tolerance or whose
    /// claim was released, up to the first live one. Entries are in arrival
    /// order, not timestamp order: a live one can hold back later expired ones
    /// (by at most twice the tolerance), which `capacity` bounds.
    private mutating func evict(now: Int64) {
        while head < order.count {
            let key = order[head]
            let entry = entries[key]
            let mine = entry?.sequence == base + head
            if mine && key.timestamp + tolerance >= now { break }
            popOldest()
        }
    }

    private mutating func popOldest() {
        let key = order[head]
        if entries[key]?.sequence == base + head { entries[key] = nil }
        head += 1
        if head >= 1024 && head * 2 >= order.count {
            order.removeFirst(head)
            base += head
            head = 0
        }
    }
}

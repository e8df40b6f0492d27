/// Turns the single acks asked for during one pass of the connection thread
/// into as few `basic.ack` frames as is correct.
///
/// `basic.ack` with `multiple` settles *every* unsettled tag up to and including
/// its tag on the channel, so it may only stand for a run of asked-for acks that
/// starts at the oldest unsettled delivery and has no hole: a delivery still in
/// work (or held for a retry) below the run would be acked with it. The
/// coalescer therefore tracks every delivered, unsettled tag of the channel
/// (ascending: the broker numbers deliveries 1, 2, 3, ... per channel); that list
/// is bounded by the prefetch. Acks outside the leading run go out one by one,
/// as before. Rejects, nacks and explicit multiple acks are written at once and
/// only recorded here.
struct AckCoalescer {
    /// Delivered and not yet settled, ascending.
    private(set) var unsettled: [UInt64] = []
    /// Asked for since the last `drain`, in the order asked.
    private var requested: [UInt64] = []

    var hasRequested: Bool { !requested.isEmpty }
    var requestedCount: Int { requested.count }

    mutating func delivered(_ tag: UInt64) {
        if let last = unsettled.last, tag <= last {
            // Not in order (never seen from RabbitMQ): keep the list sorted.
            let i = insertionIndex(tag)
            if i < unsettled.count && unsettled[i] == tag { return }
            unsettled.insert(tag, at: i)
        } else {
            unsettled.append(tag)
        }
    }

    mutating func requestAck(_ tag: UInt64) {
        requested.append(tag)
    }

    /// A tag settled on the wire by something else (reject, nack, an explicit
    /// multiple ack): with `multiple`, every tag up to `tag`.
    mutating func settled(_ tag: UInt64, multiple: Bool) {
        if multiple {
            unsettled.removeFirst(insertionIndex(tag &+ 1))
        } else {
            let i = insertionIndex(tag)
            if i < unsettled.count && unsettled[i] == tag { unsettled.remove(at: i) }
        }
    }

    /// Hands out the frames for the acks asked for since the last call: at most
    /// one `multiple` ack for the leading run (when it covers two or more),
    /// then single acks, ascending.
    mutating func drain(_ send: (_ tag: UInt64, _ multiple: Bool) -> Void) {
        guard !requested.isEmpty else { return }
        requested.sort()
        var i = 0, run = 0
        // The leading run: unsettled[0], unsettled[1], ... each asked for.
        while i < requested.count && run < unsettled.count && requested[i] == unsettled[run] {
            i += 1
            run += 1
            while i < requested.count && requested[i] == requested[i - 1] { i += 1 }  // asked twice: once is enough
        }
        if run > 0 {
            send(unsettled[run - 1], run > 1)
            unsettled.removeFirst(run)
        }
        while i < requested.count {
            let tag = requested[i]
            i += 1
            if i < requested.count && requested[i] == tag { continue }
            send(tag, false)
            settled(tag, multiple: false)
        }
        requested.removeAll(keepingCapacity: true)
    }

    /// Forgets what was asked (the connection has failed: nothing more is sent).
    mutating func dropRequested() {
        requested.removeAll(keepingCapacity: true)
    }

    /// The first index whose tag is >= `tag`.
    private func insertionIndex(_ tag: UInt64) -> Int {
        var lo = 0, hi = unsettled.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if unsettled[mid] < tag { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

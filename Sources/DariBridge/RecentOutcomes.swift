#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Outcomes this process computed recently, by message identity, so that a
/// redelivery (after a connection loss between the outcome and the ack, or an
/// outcome publish that failed) republishes the known outcome instead of
/// POSTing to Dari again. Bounded in entries, in bytes and in age; in memory
/// only, so a crash of this process, or another replica getting the
/// redelivery, can still lead to a second POST.
///
/// Memory: this is the largest structure of a busy worker, so it is kept compact.
/// An entry is a 128-bit keyed digest of the identity (SipHash through `Hasher`,
/// seeded per process, so a publisher cannot craft a collision), the outcome's
/// own fields without the three strings a redelivery carries again (URL,
/// message id, correlation id), and the time it was stored: 64 bytes in a ring
/// of `capacity` slots, plus its answer and detail bytes in a byte ring of
/// `byteLimit` bytes, plus 4 bytes of an open-addressing index. Measured at
/// 10,000 entries (scripts/bench.sh, concurrency 64): as a dictionary of
/// strings and whole outcomes ~5 MB; as a dictionary of digests to slots
/// holding `[UInt8]` and `String` fields 1.8 MB (each answer its own
/// allocation); as below ~0.8 MB.
///
/// Slots are taken in the order entries are first stored: a new entry takes
/// the oldest slot, so at most `capacity` entries are live. Storing a live
/// entry again (a deferral followed by an outcome, a redelivery) updates it in
/// its slot, with a new time for the TTL, and does not use a slot; an expired
/// entry stored again takes a new slot. An entry whose bytes the byte ring has
/// since overwritten (more than `byteLimit` bytes of answers stored after it)
/// is gone, as an evicted one is; an answer larger than `byteLimit` is not
/// remembered.
package final class RecentOutcomes: Sendable {
    package let capacity: Int
    package let ttl: Duration
    package let byteLimit: Int

    /// What is kept of an outcome (or of a hand-off to a delay queue).
    package struct Remembered: Sendable, Equatable {
        /// nil: the message was handed to a delay queue (a delayed copy carries it on).
        var status: Outcome.Status?
        var error: Outcome.ErrorKind?
        var attempts: Int32
        var httpStatus: Int16  // -1: none
        var responseJSON: [UInt8]?
        var detail: String?
        var receivedAt: Date
        var completedAt: Date

        package init(_ outcome: Outcome) {
            status = outcome.status
            error = outcome.error
            attempts = Int32(clamping: outcome.attempts)
            httpStatus = outcome.httpStatus.map { Int16(clamping: $0) } ?? -1
            responseJSON = outcome.responseJSON
            detail = outcome.detail
            receivedAt = outcome.receivedAt
            completedAt = outcome.completedAt
        }

        /// A hand-off to a delay queue of the delivery that carried `handedOffAttempts`
        /// attempts (its `x-dari-attempts`; the delayed copy carries more).
        static func deferred(handedOffAttempts: Int) -> Remembered { Remembered(handedOffAttempts: handedOffAttempts) }
        private init(handedOffAttempts: Int) {
            status = nil; error = nil; attempts = Int32(clamping: handedOffAttempts); httpStatus = -1; responseJSON = nil; detail = nil
            receivedAt = Date(timeIntervalSinceReferenceDate: 0); completedAt = receivedAt
        }

        fileprivate init(status: Outcome.Status?, error: Outcome.ErrorKind?, attempts: Int32, httpStatus: Int16,
                         responseJSON: [UInt8]?, detail: String?, receivedAt: Date, completedAt: Date) {
            self.status = status; self.error = error; self.attempts = attempts; self.httpStatus = httpStatus
            self.responseJSON = responseJSON; self.detail = detail; self.receivedAt = receivedAt; self.completedAt = completedAt
        }

        /// The remembered outcome, for the message being handled now (a redelivery carries
        /// the same URL, message id and correlation id as the original).
        package func outcome(resumeURL: String?, messageId: String?, correlationId: String?) -> Outcome? {
            guard let status else { return nil }
            return Outcome(status: status, resumeURL: resumeURL, messageId: messageId, correlationId: correlationId,
                           attempts: Int(attempts), httpStatus: httpStatus < 0 ? nil : Int(httpStatus),
                           responseJSON: responseJSON, error: error, detail: detail,
                           receivedAt: receivedAt, completedAt: completedAt)
        }
    }

    struct Digest: Hashable {
        var a: UInt64
        var b: UInt64
        init(_ key: String) {
            var h1 = Hasher(), h2 = Hasher()
            h1.combine(UInt8(0x5a)); h1.combine(key)
            h2.combine(UInt8(0xa5)); h2.combine(key)
            a = UInt64(UInt(bitPattern: h1.finalize()))
            b = UInt64(UInt(bitPattern: h2.finalize()))
        }
        init(a: UInt64, b: UInt64) {
            self.a = a
            self.b = b
        }
    }

    private let state: Mutex<RecentOutcomeStore>
    /// Stored times are nanoseconds since this instant.
    private let origin = ContinuousClock.now
    private let ttlNanos: Int64

    /// `byteLimit`: the answer and detail bytes kept at most (default 8 MiB: ~700,000
    /// answers the size of `{"ok":true}`, eight of the 1 MiB largest answer).
    package init(capacity: Int = 10_000, ttl: Duration = .seconds(600), byteLimit: Int = 8 << 20) {
        precondition(capacity > 0 && capacity < Int(Int32.max) / 2 && byteLimit > 0 && byteLimit < Int(UInt32.max))
        self.capacity = capacity
        self.ttl = ttl
        self.byteLimit = byteLimit
        let t = ttl.components
        ttlNanos = t.seconds &* 1_000_000_000 &+ t.attoseconds / 1_000_000_000
        state = Mutex(RecentOutcomeStore(capacity: capacity, byteLimit: byteLimit))
    }

    /// `message_id` when the publisher set one, else a hash of URL and variables.
    package static func identity(messageId: String?, request: ResumeRequest) -> String {
        if let messageId, !messageId.isEmpty { return "id:" + messageId }
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64, two different seeds
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        for b in request.resumeURL.utf8 { h1 = (h1 ^ UInt64(b)) &* 0x100_0000_01b3; h2 = (h2 ^ UInt64(b)) &* 0x100_0000_01b3 &+ 1 }
        h1 = (h1 ^ 0xff) &* 0x100_0000_01b3
        for b in request.variablesJSON { h1 = (h1 ^ UInt64(b)) &* 0x100_0000_01b3; h2 = (h2 ^ UInt64(b)) &* 0x100_0000_01b3 &+ 1 }
        return "h:\(String(h1, radix: 16))\(String(h2, radix: 16)):\(request.variablesJSON.count)"
    }

    package func remember(_ outcome: Outcome, for key: String, now: ContinuousClock.Instant = .now) {
        store(Remembered(outcome), for: key, now: now)
    }

    /// Remembers that the message went to a delay queue: a redelivery of the
    /// original (its ack was lost) is then acked without a POST.
    /// Remembers that the delivery of `key` that carried `handedOffAttempts`
    /// prior attempts was handed to a delay queue (confirmed). Only a
    /// redelivery of that same delivery may be acked on the strength of it:
    /// the delayed copy carries a higher attempts count and must be handled.
    package func rememberDeferred(_ key: String, handedOffAttempts: Int = 0, now: ContinuousClock.Instant = .now) {
        store(.deferred(handedOffAttempts: handedOffAttempts), for: key, now: now)
    }

    /// When the latest thing remembered for `key` is a hand-off to a delay
    /// queue: the prior attempts of the delivery that was handed off.
    package func deferredFrom(_ key: String, now: ContinuousClock.Instant = .now) -> Int? {
        live(Digest(key), now: now).flatMap { $0.status == nil ? Int($0.attempts) : nil }
    }

    /// Whether the latest thing remembered for `key` is a hand-off to a delay queue.
    package func wasDeferred(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        deferredFrom(key, now: now) != nil
    }

    /// The latest outcome remembered for `key` (nil when none, expired, or a hand-off to a delay queue).
    package func lookup(_ key: String, now: ContinuousClock.Instant = .now) -> Remembered? {
        live(Digest(key), now: now).flatMap { $0.status == nil ? nil : $0 }
    }

    private func nanos(_ instant: ContinuousClock.Instant) -> Int64 {
        let d = (instant - origin).components
        return d.seconds &* 1_000_000_000 &+ d.attoseconds / 1_000_000_000
    }


    private func live(_ digest: Digest, now: ContinuousClock.Instant) -> Remembered? {
        let now = nanos(now), ttl = ttlNanos
        return state.withLock { s in
            guard let i = s.find(digest) else { return nil }
            if now - s.slots[i].storedAt > ttl || !s.bytesIntact(s.slots[i]) {
                s.remove(at: i)
                return nil
            }
            return s.remembered(at: i)
        }
    }

    private func store(_ value: Remembered, for key: String, now: ContinuousClock.Instant) {
        let digest = Digest(key)
        let now = nanos(now)
        let response = value.responseJSON?.count ?? 0, detail = value.detail?.utf8.count ?? 0
        guard response + detail <= byteLimit else { return }
        state.withLock { s in s.store(value, digest: digest, storedAt: now) }
    }

    package var count: Int { state.withLock { $0.liveCount } }
}

/// The storage of `RecentOutcomes` (used under its lock): a ring of fixed-size
/// slots in insertion order, an open-addressing index from digest to slot, and
/// a byte ring for the variable-length parts.
struct RecentOutcomeStore {
    struct Slot {
        var a: UInt64
        var b: UInt64
        /// Nanoseconds since the owner's origin.
        var storedAt: Int64
        var receivedAt: Double
        var completedAt: Double
        /// Where the answer's bytes start in the byte ring (an absolute position), the
        /// detail's follow them; lengths UInt32.max for none.
        var bytesAt: UInt64
        var responseLength: UInt32
        var detailLength: UInt32
        var attempts: Int32
        var httpStatus: Int16
        var status: UInt8  // 0 none (deferred), else 1 + index in Outcome.Status.allCases
        var error: UInt8   // 0 none, else 1 + index in Outcome.ErrorKind.allCases
    }
    /// An optional case as a byte (0 for nil) and back, by its place in `allCases`:
    /// a case added to the enum is stored like the others.
    static func code<E: CaseIterable & Equatable>(_ value: E?) -> UInt8 where E.AllCases: RandomAccessCollection {
        guard let value, let i = E.allCases.firstIndex(of: value) else { return 0 }
        return UInt8(E.allCases.distance(from: E.allCases.startIndex, to: i) + 1)
    }
    static func decode<E: CaseIterable>(_ code: UInt8, as: E.Type) -> E? where E.AllCases: RandomAccessCollection {
        code == 0 ? nil : E.allCases[E.allCases.index(E.allCases.startIndex, offsetBy: Int(code) - 1)]
    }
    static let none = UInt32.max

    let capacity: Int
    let byteLimit: Int
    var slots: [Slot] = []
    /// Slot index + 1 per bucket, 0 empty; linear probing on the digest's `a`.
    var index: [Int32]
    let mask: Int
    /// The next slot to take once the ring is full.
    var next = 0
    /// Slots that are in the index.
    var liveCount = 0
    var bytes: [UInt8] = []
    /// Absolute position of the next byte written (bytes are at `position % byteLimit`).
    var head: UInt64 = 0

    init(capacity: Int, byteLimit: Int) {
        self.capacity = capacity
        self.byteLimit = byteLimit
        var buckets = 16
        while buckets < capacity + capacity / 3 + 1 { buckets <<= 1 }  // load at most 3/4
        index = [Int32](repeating: 0, count: buckets)
        mask = buckets - 1
        // All slots at once: grown by doubling, the ring left its earlier buffers
        // (half its size) behind in the malloc heap. Pages are touched as used.
        slots.reserveCapacity(capacity)
    }

    private func bucket(_ a: UInt64) -> Int { Int(truncatingIfNeeded: a) & mask }

    func find(_ d: RecentOutcomes.Digest) -> Int? {
        var i = bucket(d.a)
        while true {
            let v = Int(index[i])
            if v == 0 { return nil }
            if slots[v - 1].a == d.a && slots[v - 1].b == d.b { return v - 1 }
            i = (i + 1) & mask
        }
    }

    /// Takes slot `slot` out of the index (backward-shift deletion: no tombstones).
    mutating func remove(at slot: Int) {
        var i = bucket(slots[slot].a)
        while Int(index[i]) != slot + 1 {
            if index[i] == 0 { return }
            i = (i + 1) & mask
        }
        var hole = i
        var j = (i + 1) & mask
        while index[j] != 0 {
            let home = bucket(slots[Int(index[j]) - 1].a)
            // Move j into the hole unless its home lies cyclically in (hole, j].
            let stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !stays {
                index[hole] = index[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        index[hole] = 0
        liveCount -= 1
    }

    private mutating func insert(slot: Int) {
        var i = bucket(slots[slot].a)
        while index[i] != 0 { i = (i + 1) & mask }
        index[i] = Int32(slot + 1)
        liveCount += 1
    }

    func bytesIntact(_ slot: Slot) -> Bool {
        slot.responseLength == Self.none && slot.detailLength == Self.none || head - slot.bytesAt <= UInt64(byteLimit)
    }

    /// Appends to the byte ring; returns the absolute position of the first byte.
    private mutating func append(_ response: [UInt8]?, _ detail: String?) -> UInt64 {
        let length = (response?.count ?? 0) + (detail?.utf8.count ?? 0)
        if bytes.count < byteLimit && bytes.count + length <= byteLimit {
            let at = head
            if let response { bytes.append(contentsOf: response) }
            if let detail { bytes.append(contentsOf: detail.utf8) }
            head += UInt64(length)
            return at
        }
        if bytes.count < byteLimit { bytes.append(contentsOf: repeatElement(0, count: byteLimit - bytes.count)) }
        // Full size: a run never straddles the end, it starts again at 0.
        var offset = Int(head % UInt64(byteLimit))
        if offset + length > byteLimit {
            head += UInt64(byteLimit - offset)
            offset = 0
        }
        let at = head
        bytes.withUnsafeMutableBufferPointer { ring in
            var o = offset
            if let response { for b in response { ring[o] = b; o += 1 } }
            if let detail { for b in detail.utf8 { ring[o] = b; o += 1 } }
        }
        head += UInt64(length)
        return at
    }

    private func read(_ at: UInt64, skip: Int, count: Int) -> ArraySlice<UInt8> {
        let start = Int(at % UInt64(byteLimit)) + skip
        return bytes[start..<start + count]
    }

    mutating func store(_ value: RecentOutcomes.Remembered, digest: RecentOutcomes.Digest, storedAt: Int64) {
        let at = value.responseJSON == nil && value.detail == nil ? 0 : append(value.responseJSON, value.detail)
        let slot = Slot(a: digest.a, b: digest.b, storedAt: storedAt,
                        receivedAt: value.receivedAt.timeIntervalSinceReferenceDate,
                        completedAt: value.completedAt.timeIntervalSinceReferenceDate,
                        bytesAt: at, responseLength: value.responseJSON.map { UInt32($0.count) } ?? Self.none,
                        detailLength: value.detail.map { UInt32($0.utf8.count) } ?? Self.none,
                        attempts: value.attempts, httpStatus: value.httpStatus,
                        status: Self.code(value.status), error: Self.code(value.error))
        if let live = find(digest) {
            slots[live] = slot
            return
        }
        let i = next
        if i == slots.count {
            slots.append(slot)
        } else {
            let old = RecentOutcomes.Digest(a: slots[i].a, b: slots[i].b)
            if find(old) == i { remove(at: i) }
            slots[i] = slot
        }
        insert(slot: i)
        next = i + 1 == capacity ? 0 : i + 1
    }

    func remembered(at i: Int) -> RecentOutcomes.Remembered {
        let s = slots[i]
        let responseLength = s.responseLength == Self.none ? 0 : Int(s.responseLength)
        return RecentOutcomes.Remembered(
            status: Self.decode(s.status, as: Outcome.Status.self),
            error: Self.decode(s.error, as: Outcome.ErrorKind.self),
            attempts: s.attempts, httpStatus: s.httpStatus,
            responseJSON: s.responseLength == Self.none ? nil : Array(read(s.bytesAt, skip: 0, count: responseLength)),
            detail: s.detailLength == Self.none ? nil : String(decoding: read(s.bytesAt, skip: responseLength, count: Int(s.detailLength)), as: UTF8.self),
            receivedAt: Date(timeIntervalSinceReferenceDate: s.receivedAt),
            completedAt: Date(timeIntervalSinceReferenceDate: s.completedAt))
    }
}

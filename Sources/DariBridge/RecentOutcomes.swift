#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Outcomes this process computed recently, by message identity, so that a
/// redelivery (after a connection loss between the outcome and the ack, or an
/// outcome publish that failed) republishes the known outcome instead of
/// POSTing to Dari again. Bounded in size and age; in memory only, so a crash
/// of this process, or another replica getting the redelivery, can still lead
/// to a second POST.
///
/// Memory: this is the largest structure of a busy worker, so it is kept compact
/// (measured with scripts/bench.sh: ~5 MB for 10,000 entries as a dictionary of
/// strings and whole outcomes, ~1.5 MB as below). An entry is a 128-bit keyed
/// digest of the identity (SipHash through `Hasher`, seeded per process, so a
/// publisher cannot craft a collision), the outcome's own fields without the three
/// strings a redelivery carries again (URL, message id, correlation id), and the
/// time it was stored. Entries live in a ring of `capacity` slots in the order
/// they were first stored: a new entry takes the oldest slot, so at most
/// `capacity` entries are live. Storing a live entry again (a deferral followed by
/// an outcome, a redelivery) updates it in its slot, with a new time for the TTL,
/// and does not use a slot; an expired entry stored again takes a new slot.
package final class RecentOutcomes: Sendable {
    package let capacity: Int
    package let ttl: Duration

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
    }

    private struct Slot {
        var digest: Digest
        var storedAt: ContinuousClock.Instant
        var value: Remembered
    }
    private struct State {
        var index: [Digest: Int32] = [:]
        var ring: [Slot] = []
        var next = 0
    }
    private let state = Mutex(State())

    package init(capacity: Int = 10_000, ttl: Duration = .seconds(600)) {
        precondition(capacity > 0 && capacity < Int(Int32.max))
        self.capacity = capacity
        self.ttl = ttl
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

    private func live(_ digest: Digest, now: ContinuousClock.Instant) -> Remembered? {
        state.withLock { s in
            guard let i = s.index[digest] else { return nil }
            let slot = s.ring[Int(i)]
            if now - slot.storedAt > ttl {
                s.index.removeValue(forKey: digest)
                return nil
            }
            return slot.value
        }
    }

    private func store(_ value: Remembered, for key: String, now: ContinuousClock.Instant) {
        let digest = Digest(key)
        state.withLock { s in
            let slot = Slot(digest: digest, storedAt: now, value: value)
            if let live = s.index[digest] {
                s.ring[Int(live)] = slot
                return
            }
            let i = s.next
            if i == s.ring.count {
                s.ring.append(slot)
            } else {
                let old = s.ring[i].digest
                if s.index[old] == Int32(i) { s.index.removeValue(forKey: old) }
                s.ring[i] = slot
            }
            s.index[digest] = Int32(i)
            s.next = i + 1 == capacity ? 0 : i + 1
        }
    }

    package var count: Int { state.withLock { $0.index.count } }
}

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
public final class RecentOutcomes: Sendable {
    public let capacity: Int
    public let ttl: Duration

    private struct Entry {
        /// nil: the message was handed to a delay queue (a delayed copy carries it on).
        var outcome: Outcome?
        var storedAt: ContinuousClock.Instant
    }
    private struct State {
        var entries: [String: Entry] = [:]
        /// Insertion order, oldest first, with the time each was stored: a key stored
        /// again gets a new place, and its old place no longer evicts it.
        var order: [(key: String, storedAt: ContinuousClock.Instant)] = []
        var head = 0
    }
    private let state = Mutex(State())

    public init(capacity: Int = 10_000, ttl: Duration = .seconds(600)) {
        self.capacity = capacity
        self.ttl = ttl
    }

    /// `message_id` when the publisher set one, else a hash of URL and variables.
    public static func identity(messageId: String?, request: ResumeRequest) -> String {
        if let messageId, !messageId.isEmpty { return "id:" + messageId }
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64, two different seeds
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        for b in request.resumeURL.utf8 { h1 = (h1 ^ UInt64(b)) &* 0x100_0000_01b3; h2 = (h2 ^ UInt64(b)) &* 0x100_0000_01b3 &+ 1 }
        h1 = (h1 ^ 0xff) &* 0x100_0000_01b3
        for b in request.variablesJSON { h1 = (h1 ^ UInt64(b)) &* 0x100_0000_01b3; h2 = (h2 ^ UInt64(b)) &* 0x100_0000_01b3 &+ 1 }
        return "h:\(String(h1, radix: 16))\(String(h2, radix: 16)):\(request.variablesJSON.count)"
    }

    public func remember(_ outcome: Outcome, for key: String, now: ContinuousClock.Instant = .now) {
        store(Entry(outcome: outcome, storedAt: now), for: key)
    }

    /// Remembers that the message went to a delay queue: a redelivery of the
    /// original (its ack was lost) is then acked without a POST.
    public func rememberDeferred(_ key: String, now: ContinuousClock.Instant = .now) {
        store(Entry(outcome: nil, storedAt: now), for: key)
    }

    /// Whether the latest thing remembered for `key` is a hand-off to a delay queue.
    public func wasDeferred(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            guard let e = s.entries[key], now - e.storedAt <= ttl else { return false }
            return e.outcome == nil
        }
    }

    private func store(_ entry: Entry, for key: String) {
        let now = entry.storedAt
        state.withLock { s in
            s.entries[key] = entry
            s.order.append((key, now))
            while s.entries.count > capacity, s.head < s.order.count {
                let oldest = s.order[s.head]
                if s.entries[oldest.key]?.storedAt == oldest.storedAt {
                    s.entries.removeValue(forKey: oldest.key)
                }
                s.head += 1
            }
            // Stale places (keys stored again or expired) are dropped as the list is compacted.
            if s.order.count > 2 * capacity + 1024 {
                s.order = s.order[s.head...].filter { s.entries[$0.key]?.storedAt == $0.storedAt }
                s.head = 0
            } else if s.head > 1024 && s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    public func lookup(_ key: String, now: ContinuousClock.Instant = .now) -> Outcome? {
        state.withLock { s in
            guard let e = s.entries[key] else { return nil }
            if now - e.storedAt > ttl {
                s.entries.removeValue(forKey: key)
                return nil
            }
            return e.outcome
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}

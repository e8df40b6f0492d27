import Foundation
import Testing
@testable import DariBridge

private func request(_ url: String = "https://api.usedari.com/public/send-user-signal/a", _ variables: String = #"{"x":1}"#) -> ResumeRequest {
    ResumeRequest(resumeURL: url, variablesJSON: Array(variables.utf8))
}

private func outcome(_ n: Int) -> Outcome {
    Outcome(status: .succeeded, messageId: "m\(n)", attempts: n, receivedAt: Date(timeIntervalSince1970: 0),
            completedAt: Date(timeIntervalSince1970: 1))
}

@Suite("RecentOutcomes")
struct RecentOutcomesTests {
    @Test func identityUsesMessageIdWhenPresent() {
        #expect(RecentOutcomes.identity(messageId: "abc", request: request()) == "id:abc")
        // Same message id, different content: still the same identity.
        #expect(RecentOutcomes.identity(messageId: "abc", request: request("https://other/x", "{}"))
            == RecentOutcomes.identity(messageId: "abc", request: request()))
        #expect(RecentOutcomes.identity(messageId: "abc", request: request())
            != RecentOutcomes.identity(messageId: "abd", request: request()))
    }

    @Test func emptyOrMissingMessageIdFallsBackToContentHash() {
        let none = RecentOutcomes.identity(messageId: nil, request: request())
        let empty = RecentOutcomes.identity(messageId: "", request: request())
        #expect(none == empty)
        #expect(!none.hasPrefix("id:"))
        #expect(none != "id:")
    }

    @Test func contentHashIsEqualForEqualContent() {
        #expect(RecentOutcomes.identity(messageId: nil, request: request()) == RecentOutcomes.identity(messageId: nil, request: request()))
        // The pipeline's approval is not part of the identity; the URL and the bytes are.
        var approved = request()
        approved.approved = ApprovedURL(scheme: "https", host: "h", port: 443, requestTarget: "/")
        #expect(RecentOutcomes.identity(messageId: nil, request: approved) == RecentOutcomes.identity(messageId: nil, request: request()))
    }

    @Test func contentHashDiffersForDifferentContent() {
        let base = RecentOutcomes.identity(messageId: nil, request: request())
        let variants = [
            request("https://api.usedari.com/public/send-user-signal/b"),
            request("https://api.usedari.com/public/send-user-signal/a", #"{"x":2}"#),
            request("https://api.usedari.com/public/send-user-signal/a", #"{"x":1 }"#),
            request("https://api.usedari.com/public/send-user-signal/a", #"{"y":1}"#),
            request("https://api.usedari.com/public/send-user-signal/", #"a{"x":1}"#),  // same concatenation, other split
            request("https://api.usedari.com/public/send-user-signal/a{", #""x":1}"#),
        ]
        var seen: Set<String> = [base]
        for variant in variants {
            let id = RecentOutcomes.identity(messageId: nil, request: variant)
            #expect(id != base, "\(variant.resumeURL) \(String(decoding: variant.variablesJSON, as: UTF8.self))")
            seen.insert(id)
        }
        #expect(seen.count == variants.count + 1)
    }

    @Test func hashIdentityCannotCollideWithAMessageId() {
        let hashed = RecentOutcomes.identity(messageId: nil, request: request())
        // Whatever a publisher puts in message_id, it is namespaced.
        #expect(RecentOutcomes.identity(messageId: hashed, request: request()) != hashed)
    }

    @Test func remembersAndLooksUp() {
        let recent = RecentOutcomes()
        #expect(recent.lookup("k") == nil)
        recent.remember(outcome(1), for: "k")
        #expect(recent.lookup("k") == .init(outcome(1)))
        recent.remember(outcome(2), for: "k")  // replaces, does not grow
        #expect(recent.lookup("k") == .init(outcome(2)))
        #expect(recent.count == 1)
    }

    @Test func capacityEvictsTheOldest() {
        let recent = RecentOutcomes(capacity: 3)
        for n in 1...5 { recent.remember(outcome(n), for: "k\(n)") }
        #expect(recent.count == 3)
        #expect(recent.lookup("k1") == nil)
        #expect(recent.lookup("k2") == nil)
        #expect(recent.lookup("k3") == .init(outcome(3)))
        #expect(recent.lookup("k4") == .init(outcome(4)))
        #expect(recent.lookup("k5") == .init(outcome(5)))
    }

    @Test func capacityHoldsOverManyInsertions() {
        // Goes past the internal compaction threshold of the insertion order.
        let recent = RecentOutcomes(capacity: 100)
        for n in 0..<5_000 { recent.remember(outcome(n), for: "k\(n)") }
        #expect(recent.count == 100)
        #expect(recent.lookup("k4899") == nil)
        #expect(recent.lookup("k4900") == .init(outcome(4900)))
        #expect(recent.lookup("k4999") == .init(outcome(4999)))
    }

    @Test func entriesExpireAfterTheTTL() {
        let recent = RecentOutcomes(capacity: 10, ttl: .seconds(60))
        let t0 = ContinuousClock.now
        recent.remember(outcome(1), for: "k", now: t0)
        #expect(recent.lookup("k", now: t0 + .seconds(59)) == .init(outcome(1)))
        #expect(recent.lookup("k", now: t0 + .seconds(60)) == .init(outcome(1)))  // expiry is strictly after the TTL
        #expect(recent.lookup("k", now: t0 + .seconds(61)) == nil)
        #expect(recent.count == 0)  // an expired entry found on lookup is dropped
        #expect(recent.lookup("k", now: t0) == nil)
    }

    @Test func rememberingAgainRefreshesTheTTL() {
        let recent = RecentOutcomes(capacity: 10, ttl: .seconds(60))
        let t0 = ContinuousClock.now
        recent.remember(outcome(1), for: "k", now: t0)
        recent.remember(outcome(2), for: "k", now: t0 + .seconds(50))
        #expect(recent.lookup("k", now: t0 + .seconds(100)) == .init(outcome(2)))
    }

    @Test func keyRememberedAgainAfterExpiryIsNotEvictedBeforeOlderKeys() {
        // capacity 2: A expires (dropped on lookup), B and C are stored, then A again.
        // The oldest live entry is B, so B should go; A (just stored) should stay.
        let recent = RecentOutcomes(capacity: 2, ttl: .seconds(10))
        let t0 = ContinuousClock.now
        recent.remember(outcome(1), for: "A", now: t0)
        #expect(recent.lookup("A", now: t0 + .seconds(11)) == nil)
        recent.remember(outcome(2), for: "B", now: t0 + .seconds(11))
        recent.remember(outcome(3), for: "C", now: t0 + .seconds(12))
        recent.remember(outcome(4), for: "A", now: t0 + .seconds(13))
        #expect(recent.count == 2)
        #expect(recent.lookup("C", now: t0 + .seconds(13)) == .init(outcome(3)))
        #expect(recent.lookup("A", now: t0 + .seconds(13)) == .init(outcome(4)))
        #expect(recent.lookup("B", now: t0 + .seconds(13)) == nil)
    }

    @Test func aRememberedOutcomeComesBackWhole() {
        let full = Outcome(status: .failed, resumeURL: "https://api.usedari.com/public/send-user-signal/z", messageId: "m-9",
                           correlationId: "c-9", attempts: 3, httpStatus: 422, responseJSON: Array(#"{"detail":"no"}"#.utf8),
                           error: .dariError, detail: "no", receivedAt: Date(timeIntervalSince1970: 1_700_000_000.123456),
                           completedAt: Date(timeIntervalSince1970: 1_700_000_001.654321))
        let recent = RecentOutcomes()
        recent.remember(full, for: "k")
        let back = recent.lookup("k")?.outcome(resumeURL: full.resumeURL, messageId: full.messageId, correlationId: full.correlationId)
        #expect(back == full)
        // The three strings come from the message being handled, not from memory.
        #expect(recent.lookup("k")?.outcome(resumeURL: nil, messageId: "other", correlationId: nil)?.messageId == "other")
        let noStatus = Outcome(status: .succeeded, attempts: 1, receivedAt: full.receivedAt, completedAt: full.completedAt)
        recent.remember(noStatus, for: "n")
        #expect(recent.lookup("n")?.outcome(resumeURL: nil, messageId: nil, correlationId: nil) == noStatus)
    }

    @Test func everyStatusAndErrorKindComesBack() {
        let recent = RecentOutcomes()
        for status in Outcome.Status.allCases {
            for error in Outcome.ErrorKind.allCases.map(Optional.some) + [nil] {
                let o = Outcome(status: status, attempts: 1, error: error, receivedAt: Date(timeIntervalSince1970: 0),
                                completedAt: Date(timeIntervalSince1970: 1))
                let key = "\(status)-\(String(describing: error))"
                recent.remember(o, for: key)
                #expect(recent.lookup(key) == .init(o), "\(key)")
            }
        }
    }

    @Test func aDeferralIsNotAnOutcome() {
        let recent = RecentOutcomes()
        recent.rememberDeferred("k")
        #expect(recent.wasDeferred("k"))
        #expect(recent.lookup("k") == nil)
        recent.remember(outcome(1), for: "k")
        #expect(!recent.wasDeferred("k"))
        #expect(recent.lookup("k") == .init(outcome(1)))
        #expect(!recent.wasDeferred("unknown"))
    }

    @Test func storingKeysAgainNeverExceedsTheCapacity() {
        let recent = RecentOutcomes(capacity: 4)
        for n in 0..<1_000 { recent.remember(outcome(n), for: "k\(n % 7)") }
        #expect(recent.count <= 4)
        // The four stored last are the live ones.
        for n in 996..<1_000 { #expect(recent.lookup("k\(n % 7)") == .init(outcome(n))) }
        for n in 993..<996 { #expect(recent.lookup("k\(n % 7)") == nil) }
    }

    @Test func storingALiveEntryAgainUpdatesItInPlace() {
        // A deferral followed by an outcome, or repeated redeliveries, must not use up slots.
        let recent = RecentOutcomes(capacity: 3)
        recent.remember(outcome(1), for: "A")
        for n in 2...4 { recent.remember(outcome(n), for: "B") }
        #expect(recent.count == 2)
        #expect(recent.lookup("A") == .init(outcome(1)))
        #expect(recent.lookup("B") == .init(outcome(4)))
        recent.rememberDeferred("C")
        recent.remember(outcome(5), for: "C")
        #expect(recent.count == 3)
        // The next new key takes the oldest slot (A's, first stored), then B's.
        recent.remember(outcome(6), for: "D")
        #expect(recent.lookup("A") == nil)
        #expect(recent.lookup("B") == .init(outcome(4)))
        recent.remember(outcome(7), for: "E")
        #expect(recent.lookup("B") == nil)
        #expect(recent.lookup("C") == .init(outcome(5)))
        #expect(recent.count == 3)
    }

    private func answer(_ n: Int, bytes: Int) -> Outcome {
        Outcome(status: .succeeded, attempts: 1, httpStatus: 200, responseJSON: Array(repeating: UInt8(ascii: "a") &+ UInt8(n % 26), count: bytes),
                receivedAt: Date(timeIntervalSince1970: 0), completedAt: Date(timeIntervalSince1970: 1))
    }

    @Test func answersOverwrittenInTheByteRingAreForgotten() {
        // 100 bytes of answers: k3's 40 bytes do not fit after k1's and k2's, start
        // again at 0 and overwrite k1's; k2's are intact.
        let recent = RecentOutcomes(capacity: 10, byteLimit: 100)
        for n in 1...3 { recent.remember(answer(n, bytes: 40), for: "k\(n)") }
        #expect(recent.lookup("k1") == nil)
        #expect(recent.lookup("k2") == .init(answer(2, bytes: 40)))
        #expect(recent.lookup("k3") == .init(answer(3, bytes: 40)))
        #expect(recent.count == 2)
        // A deferral and an outcome without an answer or detail use no bytes.
        for n in 4...10 { recent.rememberDeferred("d\(n)") }
        #expect(recent.lookup("k3") == .init(answer(3, bytes: 40)))
    }

    @Test func anAnswerLargerThanTheByteLimitIsNotRemembered() {
        let recent = RecentOutcomes(capacity: 10, byteLimit: 64)
        recent.remember(answer(1, bytes: 65), for: "big")
        #expect(recent.lookup("big") == nil)
        #expect(recent.count == 0)
        recent.remember(answer(2, bytes: 64), for: "fits")
        #expect(recent.lookup("fits") == .init(answer(2, bytes: 64)))
    }

    /// The store against a plain model of its rules (a dictionary and the ring
    /// of slots in insertion order) under random operations: few buckets and
    /// many keys, so the index's probing and deletion are exercised hard.
    @Test func randomOperationsMatchAModel() {
        struct Model {
            let capacity: Int, ttl: Int
            var slots: [(key: String, at: Int, value: RecentOutcomes.Remembered)] = []
            var index: [String: Int] = [:]
            var next = 0
            mutating func store(_ key: String, _ value: RecentOutcomes.Remembered, at: Int) {
                if let i = index[key] { slots[i] = (key, at, value); return }
                let i = next
                if i == slots.count { slots.append((key, at, value)) } else {
                    if index[slots[i].key] == i { index.removeValue(forKey: slots[i].key) }
                    slots[i] = (key, at, value)
                }
                index[key] = i
                next = i + 1 == capacity ? 0 : i + 1
            }
            mutating func live(_ key: String, at: Int) -> RecentOutcomes.Remembered? {
                guard let i = index[key] else { return nil }
                if at - slots[i].at > ttl { index.removeValue(forKey: key); return nil }
                return slots[i].value
            }
        }
        var rng = SplitMix(seed: 0x5eed)
        for capacity in [1, 2, 5, 12, 40] {
            let recent = RecentOutcomes(capacity: capacity, ttl: .seconds(30))
            var model = Model(capacity: capacity, ttl: 30)
            let t0 = ContinuousClock.now
            var t = 0
            for step in 0..<4_000 {
                let key = "k\(rng.next() % UInt64(capacity * 3 + 2))"
                t += Int(rng.next() % 3)
                let now = t0 + .seconds(t)
                switch rng.next() % 4 {
                case 0:
                    let o = Outcome(status: step % 3 == 0 ? .failed : .succeeded, attempts: step, httpStatus: step % 5 == 0 ? nil : 200 + step % 300,
                                    responseJSON: step % 4 == 0 ? nil : Array("{\"n\":\(step)}".utf8), error: step % 3 == 0 ? .dariError : nil,
                                    detail: step % 3 == 0 ? "detail \(step) é" : nil,
                                    receivedAt: Date(timeIntervalSince1970: Double(step)), completedAt: Date(timeIntervalSince1970: Double(step) + 0.5))
                    recent.remember(o, for: key, now: now)
                    model.store(key, .init(o), at: t)
                case 1:
                    recent.rememberDeferred(key, handedOffAttempts: step % 7, now: now)
                    model.store(key, .deferred(handedOffAttempts: step % 7), at: t)
                default:
                    let expected = model.live(key, at: t)
                    #expect(recent.lookup(key, now: now) == (expected?.status == nil ? nil : expected), "capacity \(capacity) step \(step) \(key)")
                    if expected?.status == nil, let expected {
                        #expect(recent.deferredFrom(key, now: now) == Int(expected.attempts))
                    }
                }
                #expect(recent.count == model.index.count, "capacity \(capacity) step \(step)")
                #expect(recent.count <= capacity)
            }
        }
    }
}

/// A small deterministic generator for the random tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

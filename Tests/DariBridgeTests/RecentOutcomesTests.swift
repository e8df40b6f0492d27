import Foundation
import Testing
@testable import DariBridge

private func request(_ url: String = "https://api.usedari.com/public/send-user-signal/a", _ variables: String = #"{"x":1}"#) -> ResumeRequest {
    ResumeRequest(resumeURL: url, variablesJSON: Array(variables.utf8), variableKeys: [])
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
        // variableKeys are not part of the identity; the bytes are.
        let withKeys = ResumeRequest(resumeURL: request().resumeURL, variablesJSON: request().variablesJSON, variableKeys: ["x"])
        #expect(RecentOutcomes.identity(messageId: nil, request: withKeys) == RecentOutcomes.identity(messageId: nil, request: request()))
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
        #expect(recent.lookup("k") == outcome(1))
        recent.remember(outcome(2), for: "k")  // replaces, does not grow
        #expect(recent.lookup("k") == outcome(2))
        #expect(recent.count == 1)
    }

    @Test func capacityEvictsTheOldest() {
        let recent = RecentOutcomes(capacity: 3)
        for n in 1...5 { recent.remember(outcome(n), for: "k\(n)") }
        #expect(recent.count == 3)
        #expect(recent.lookup("k1") == nil)
        #expect(recent.lookup("k2") == nil)
        #expect(recent.lookup("k3") == outcome(3))
        #expect(recent.lookup("k4") == outcome(4))
        #expect(recent.lookup("k5") == outcome(5))
    }

    @Test func capacityHoldsOverManyInsertions() {
        // Goes past the internal compaction threshold of the insertion order.
        let recent = RecentOutcomes(capacity: 100)
        for n in 0..<5_000 { recent.remember(outcome(n), for: "k\(n)") }
        #expect(recent.count == 100)
        #expect(recent.lookup("k4899") == nil)
        #expect(recent.lookup("k4900") == outcome(4900))
        #expect(recent.lookup("k4999") == outcome(4999))
    }

    @Test func entriesExpireAfterTheTTL() {
        let recent = RecentOutcomes(capacity: 10, ttl: .seconds(60))
        let t0 = ContinuousClock.now
        recent.remember(outcome(1), for: "k", now: t0)
        #expect(recent.lookup("k", now: t0 + .seconds(59)) == outcome(1))
        #expect(recent.lookup("k", now: t0 + .seconds(60)) == outcome(1))  // expiry is strictly after the TTL
        #expect(recent.lookup("k", now: t0 + .seconds(61)) == nil)
        #expect(recent.count == 0)  // an expired entry found on lookup is dropped
        #expect(recent.lookup("k", now: t0) == nil)
    }

    @Test func rememberingAgainRefreshesTheTTL() {
        let recent = RecentOutcomes(capacity: 10, ttl: .seconds(60))
        let t0 = ContinuousClock.now
        recent.remember(outcome(1), for: "k", now: t0)
        recent.remember(outcome(2), for: "k", now: t0 + .seconds(50))
        #expect(recent.lookup("k", now: t0 + .seconds(100)) == outcome(2))
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
        #expect(recent.lookup("C", now: t0 + .seconds(13)) == outcome(3))
        #expect(recent.lookup("A", now: t0 + .seconds(13)) == outcome(4))
        #expect(recent.lookup("B", now: t0 + .seconds(13)) == nil)
    }
}

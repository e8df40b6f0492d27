import Testing
@testable import DariBridge

@Suite struct WebhookDeliveriesTests {
    func key(_ ts: Int64, _ n: UInt8) -> WebhookDeliveryKey {
        WebhookDeliveryKey(timestamp: ts, signature: [n] + [UInt8](repeating: 7, count: 31))
    }

    @Test func secondClaimOfAStoredDeliveryIsADuplicate() {
        var d = WebhookDeliveries(tolerance: 300)
        #expect(d.claim(key(1000, 1), now: 1000) == .new)
        #expect(d.claim(key(1000, 1), now: 1001) == .inFlight)
        d.stored(key(1000, 1))
        #expect(d.claim(key(1000, 1), now: 1100) == .stored)
        // Same signature, other timestamp; other signature, same timestamp: other deliveries.
        #expect(d.claim(key(1001, 1), now: 1100) == .new)
        #expect(d.claim(key(1000, 2), now: 1100) == .new)
    }

    @Test func aReleasedClaimIsForgottenSoTheRetryPublishes() {
        var d = WebhookDeliveries(tolerance: 300)
        #expect(d.claim(key(1000, 1), now: 1000) == .new)
        d.release(key(1000, 1))
        #expect(d.claim(key(1000, 1), now: 1001) == .new)
        d.stored(key(1000, 1))
        d.release(key(1000, 1))  // a stored one stays stored
        #expect(d.claim(key(1000, 1), now: 1002) == .stored)
    }

    @Test func entriesLeaveWithTheTolerance() {
        var d = WebhookDeliveries(tolerance: 300)
        _ = d.claim(key(1000, 1), now: 1000)
        d.stored(key(1000, 1))
        #expect(d.claim(key(1000, 1), now: 1300) == .stored)
        _ = d.claim(key(1301, 9), now: 1301)  // evicts the first
        #expect(d.count == 1)
        #expect(d.claim(key(1000, 1), now: 1301) == .new)  // the verifier refuses it as stale before this
    }

    @Test func boundedByCapacityOldestFirst() {
        var d = WebhookDeliveries(capacity: 3, tolerance: 300)
        for n: UInt8 in 1...3 {
            _ = d.claim(key(1000, n), now: 1000)
            d.stored(key(1000, n))
        }
        _ = d.claim(key(1000, 4), now: 1000)
        #expect(d.count == 3)
        #expect(d.slots == 3)
        #expect(d.claim(key(1000, 2), now: 1000) == .stored)
        #expect(d.claim(key(1000, 1), now: 1000) == .new)  // evicted
    }

    @Test func releasedSlotsDoNotGrowPastCapacityAndDoNotEvictALaterClaim() {
        var d = WebhookDeliveries(capacity: 4, tolerance: 300)
        for _ in 0..<10_000 {  // Dari retrying through a long outage
            #expect(d.claim(key(1000, 1), now: 1000) == .new)
            d.release(key(1000, 1))
        }
        #expect(d.slots <= 4)
        #expect(d.claim(key(1000, 1), now: 1000) == .new)
        d.stored(key(1000, 1))
        for n: UInt8 in 2...4 { _ = d.claim(key(1000, n), now: 1000) }
        #expect(d.claim(key(1000, 1), now: 1000) == .stored)
    }

    @Test func manyDeliveriesStayBounded() {
        var d = WebhookDeliveries(capacity: 1000, tolerance: 300)
        for i in 0..<50_000 {
            let k = WebhookDeliveryKey(timestamp: 1000 + Int64(i / 100), signature: withUnsafeBytes(of: UInt64(i).bigEndian) { Array($0) } + [UInt8](repeating: 0, count: 24))
            #expect(d.claim(k, now: 1000 + Int64(i / 100)) == .new)
            d.stored(k)
        }
        #expect(d.count == 1000)
        #expect(d.slots == 1000)
    }
}

import Foundation
import Testing
@testable import DariBridge

@Suite("RetryPolicy")
struct RetryPolicyTests {
    /// |a - b| <= 1ms
    private static func close(_ a: Duration, _ b: Duration) -> Bool {
        max(a - b, b - a) <= .milliseconds(1)
    }

    @Test func defaults() {
        let p = RetryPolicy()
        #expect(p.maxAttempts == 6)
        #expect(p.initialBackoff == .milliseconds(500))
        #expect(p.maxBackoff == .seconds(30))
        #expect(p.maxRetryAfter == .seconds(60))
        #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
        #expect(RetryPolicy(maxAttempts: -3) == RetryPolicy(maxAttempts: 1))
    }

    @Test func growthWithMaximalJitterDoublesUpToTheCap() {
        let p = RetryPolicy()
        let expected: [Duration] = [
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16),
            .seconds(30), .seconds(30), .seconds(30),
        ]
        for (index, want) in expected.enumerated() {
            let got = p.delay(afterAttempt: index + 1, retryAfter: nil, randomUnit: { 0.999999 })
            #expect(Self.close(got, want), "attempt \(index + 1): \(got) vs \(want)")
            #expect(got <= want)
            #expect(p.backoffCeiling(afterAttempt: index + 1) == want)
        }
    }

    @Test func jitterIsUniformWithinTheCeiling() {
        let p = RetryPolicy()
        #expect(p.delay(afterAttempt: 1, retryAfter: nil, randomUnit: { 0 }) == .zero)
        #expect(p.delay(afterAttempt: 50, retryAfter: nil, randomUnit: { 0 }) == .zero)
        #expect(Self.close(p.delay(afterAttempt: 3, retryAfter: nil, randomUnit: { 0.5 }), .seconds(1)))
        #expect(Self.close(p.delay(afterAttempt: 10, retryAfter: nil, randomUnit: { 0.25 }), .milliseconds(7500)))
        // Out-of-contract random values are clamped.
        #expect(p.delay(afterAttempt: 2, retryAfter: nil, randomUnit: { 1.5 }) == .seconds(1))
        #expect(p.delay(afterAttempt: 2, retryAfter: nil, randomUnit: { -1 }) == .zero)
        #expect(p.delay(afterAttempt: 2, retryAfter: nil, randomUnit: { .nan }) == .zero)
    }

    @Test func largeAttemptsDoNotOverflow() {
        let p = RetryPolicy()
        for attempt in [64, 65, 200, 10_000, Int.max] {
            #expect(p.backoffCeiling(afterAttempt: attempt) == .seconds(30))
            #expect(Self.close(p.delay(afterAttempt: attempt, retryAfter: nil, randomUnit: { 0.999999 }), .seconds(30)))
        }
        let tiny = RetryPolicy(initialBackoff: .nanoseconds(1), maxBackoff: .seconds(Int64.max))
        #expect(tiny.backoffCeiling(afterAttempt: 200) == .seconds(Int64.max))
        let zero = RetryPolicy(initialBackoff: .zero)
        #expect(zero.backoffCeiling(afterAttempt: Int.max) == .zero)
        #expect(RetryPolicy().backoffCeiling(afterAttempt: 0) == .milliseconds(500))
        #expect(RetryPolicy().backoffCeiling(afterAttempt: Int.min) == .milliseconds(500))
    }

    @Test func retryAfterOverridesAndIsCapped() {
        let p = RetryPolicy()
        var calls = 0
        let rnd: () -> Double = { calls += 1; return 0.5 }
        #expect(p.delay(afterAttempt: 1, retryAfter: .seconds(5), randomUnit: rnd) == .seconds(5))
        #expect(p.delay(afterAttempt: 9, retryAfter: .zero, randomUnit: rnd) == .zero)
        #expect(p.delay(afterAttempt: 1, retryAfter: .seconds(3600), randomUnit: rnd) == .seconds(60))
        #expect(p.delay(afterAttempt: 1, retryAfter: .seconds(-5), randomUnit: rnd) == .zero)
        #expect(calls == 0)
        let strict = RetryPolicy(maxRetryAfter: .seconds(2))
        #expect(strict.delay(afterAttempt: 1, retryAfter: .seconds(10), randomUnit: rnd) == .seconds(2))
    }

    @Test func mayRetry() {
        let p = RetryPolicy(maxAttempts: 3)
        #expect(p.mayRetry(afterAttempt: 1))
        #expect(p.mayRetry(afterAttempt: 2))
        #expect(!p.mayRetry(afterAttempt: 3))
        #expect(!p.mayRetry(afterAttempt: 4))
        #expect(!RetryPolicy(maxAttempts: 1).mayRetry(afterAttempt: 1))
    }

    @Test("isRetryable", arguments: [
        (200, false), (201, false), (301, false), (302, false), (400, false), (404, false), (408, true),
        (409, false), (422, false), (425, true), (429, true), (500, true), (501, false), (502, true),
        (503, true), (504, true), (505, false),
    ])
    func retryable(status: Int, expected: Bool) {
        #expect(RetryPolicy.isRetryable(status: status) == expected)
    }
}

@Suite("RetryAfter")
struct RetryAfterTests {
    /// Sun, 06 Nov 1994 08:49:37 GMT
    static let refDate = Date(timeIntervalSince1970: 784_111_777)
    static let now = Date(timeIntervalSince1970: 784_111_777 - 120)  // two minutes earlier

    @Test func deltaSeconds() {
        #expect(RetryAfter.parse("0", now: Self.now) == .zero)
        #expect(RetryAfter.parse("120", now: Self.now) == .seconds(120))
        #expect(RetryAfter.parse("007", now: Self.now) == .seconds(7))
        #expect(RetryAfter.parse("  30\t", now: Self.now) == .seconds(30))
        #expect(RetryAfter.parse("\n5\r\n", now: Self.now) == .seconds(5))
        #expect(RetryAfter.parse("99999999999999999999999", now: Self.now) == .seconds(Int64.max))
    }

    @Test("all three HTTP-date forms", arguments: [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
        "sun, 06 nov 1994 08:49:37 gmt",
    ])
    func httpDates(_ value: String) {
        #expect(RetryAfter.parse(value, now: Self.now) == .seconds(120))
    }

    @Test func datesAreComputedByHand() {
        #expect(RetryAfter.parseHTTPDate(Array("Thu, 01 Jan 1970 00:00:00 GMT".utf8), now: Self.now) == 0)
        #expect(RetryAfter.parseHTTPDate(Array("Tue, 29 Feb 2000 23:59:59 GMT".utf8), now: Self.now) == 951_868_799)
        #expect(RetryAfter.parseHTTPDate(Array("Fri Dec 31 23:59:59 1999".utf8), now: Self.now) == 946_684_799)
        #expect(RetryAfter.parseHTTPDate(Array("Sat Jan  1 00:00:00 2000".utf8), now: Self.now) == 946_684_800)
        #expect(RetryAfter.parseHTTPDate(Array("Wed, 31 Dec 2025 12:00:00 GMT".utf8), now: Self.now) == 1_767_182_400)
        #expect(RetryAfter.daysFromCivil(1970, 1, 1) == 0)
        #expect(RetryAfter.civilYear(daysSinceEpoch: 0) == 1970)
        #expect(RetryAfter.civilYear(daysSinceEpoch: -1) == 1969)
        #expect(RetryAfter.civilYear(daysSinceEpoch: RetryAfter.daysFromCivil(2024, 2, 29)) == 2024)
        #expect(RetryAfter.civilYear(daysSinceEpoch: RetryAfter.daysFromCivil(2024, 12, 31)) == 2024)
    }

    @Test func subSecondNowAndPastDates() {
        let later = Date(timeIntervalSince1970: 784_111_777 - 1.25)
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: later) == .milliseconds(1250))
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: Self.refDate) == .zero)
        #expect(RetryAfter.parse("Thu, 01 Jan 1970 00:00:00 GMT", now: Self.now) == .zero)
        #expect(RetryAfter.parse("Sun Nov  6 08:49:37 1994", now: Date(timeIntervalSince1970: 2_000_000_000)) == .zero)
    }

    @Test func rfc850TwoDigitYears() {
        let now2025 = Date(timeIntervalSince1970: 1_750_000_000)  // 2025-06-15
        #expect(RetryAfter.fullYear(twoDigit: 94, now: now2025) == 1994)
        #expect(RetryAfter.fullYear(twoDigit: 25, now: now2025) == 2025)
        #expect(RetryAfter.fullYear(twoDigit: 30, now: now2025) == 2030)
        #expect(RetryAfter.fullYear(twoDigit: 76, now: now2025) == 1976)
        #expect(RetryAfter.parse("Sunday, 15-Jun-25 00:00:10 GMT", now: Date(timeIntervalSince1970: 1_749_945_600))
            == .seconds(10))
    }

    @Test("junk is rejected", arguments: [
        "", "   ", "-1", "-0", "+5", "1.5", "1e3", "5s", "0x10", "one", "١٢", "12 34", "Infinity", "NaN",
        "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMT+1",
        "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT", "Sun 06 Nov 1994 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun, 06-Nov-94 08:49:37 GMT", "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994", "Sun Nov 06 08:49:37 94", "Sunday Nov  6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT", "2024-01-01T00:00:00Z",
    ])
    func junk(_ value: String) {
        #expect(RetryAfter.parse(value, now: Self.now) == nil)
    }

    @Test func asciiTrimming() {
        #expect(" \t\r\n\u{0B}\u{0C}ab c \n".asciiTrimmedBytes == Array("ab c".utf8))
        #expect("   ".asciiTrimmedBytes == [])
        #expect("".asciiTrimmedBytes == [])
        #expect("x".asciiTrimmedBytes == [UInt8(ascii: "x")])
        #expect("\u{00A0}7\u{00A0}".asciiTrimmedBytes == Array("\u{00A0}7\u{00A0}".utf8))
        #expect(RetryAfter.parse("\u{00A0}7", now: Self.now) == nil)
    }
}

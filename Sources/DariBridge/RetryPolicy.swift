#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How often and how patiently a resume request is retried against Dari.
package struct RetryPolicy: Sendable, Equatable {
    /// Total attempts, the first one included; always >= 1 (the initializer clamps).
    package var maxAttempts: Int
    package var initialBackoff: Duration
    package var maxBackoff: Duration
    /// Cap applied to a server's Retry-After.
    package var maxRetryAfter: Duration

    package init(
        maxAttempts: Int = 6,
        initialBackoff: Duration = .milliseconds(500),
        maxBackoff: Duration = .seconds(30),
        maxRetryAfter: Duration = .seconds(60)
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.maxRetryAfter = maxRetryAfter
    }

    /// 408, 425, 429, 500, 502, 503, 504 are retried; every other status (3xx included) is final.
    package static func isRetryable(status: Int) -> Bool {
        switch status {
        case 408, 425, 429, 500, 502, 503, 504: true
        default: false
        }
    }

    /// Delay before the next attempt after `attempt` (1-based) failed. Full jitter: uniform in
    /// [0, min(maxBackoff, initialBackoff * 2^(attempt-1))], computed without overflow for large attempts.
    /// A server's Retry-After, when given, replaces the computed delay, capped at maxRetryAfter
    /// (`randomUnit` is then not consulted). `randomUnit` returns a value in [0, 1); anything outside
    /// (or NaN) is clamped.
    package func delay(afterAttempt attempt: Int, retryAfter: Duration?, randomUnit: () -> Double) -> Duration {
        if let retryAfter {
            return min(max(retryAfter, .zero), max(maxRetryAfter, .zero))
        }
        let ceiling = backoffCeiling(afterAttempt: attempt)
        let unit = randomUnit()
        guard unit > 0 else { return .zero }  // also catches NaN
        return unit >= 1 ? ceiling : ceiling * unit
    }

    /// min(maxBackoff, initialBackoff * 2^(attempt-1)); attempts below 1 count as 1, negative durations as zero.
    /// Doubling stops as soon as the cap is reached, so it never overflows (at most ~128 doublings).
    func backoffCeiling(afterAttempt attempt: Int) -> Duration {
        let cap = max(maxBackoff, .zero)
        var ceiling = min(max(initialBackoff, .zero), cap)
        var remaining = max(attempt, 1) - 1
        while remaining > 0, ceiling > .zero, ceiling < cap {
            ceiling = min(ceiling * 2, cap)
            remaining -= 1
        }
        return ceiling
    }

    /// Whether another attempt is allowed after `attempt` attempts.
    package func mayRetry(afterAttempt attempt: Int) -> Bool {
        attempt < max(1, maxAttempts)
    }
}

package enum RetryAfter {
    /// Parses a Retry-After header value: delta-seconds (non-negative integer) or an HTTP-date in any of the
    /// three RFC 9110 forms (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, obsolete RFC 850
    /// `Sunday, 06-Nov-94 08:49:37 GMT`, asctime `Sun Nov  6 08:49:37 1994`), relative to `now`.
    /// A date in the past gives .zero. Garbage, negative numbers, empty -> nil. Absurdly large delta-seconds
    /// saturate (callers cap them anyway). Names are matched case-insensitively; the weekday is not cross-checked.
    package static func parse(_ value: String, now: Date) -> Duration? {
        let bytes = value.asciiTrimmedBytes
        guard !bytes.isEmpty else { return nil }
        if bytes.allSatisfy(isDigit) {
            var seconds: Int64 = 0
            for b in bytes {
                let (times10, o1) = seconds.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int64(b - UInt8(ascii: "0")))
                if o1 || o2 { return .seconds(Int64.max) }
                seconds = sum
            }
            return .seconds(seconds)
        }
        guard let epochSeconds = parseHTTPDate(bytes, now: now) else { return nil }
        let milliseconds = ((Double(epochSeconds) - now.timeIntervalSince1970) * 1000).rounded()
        return milliseconds > 0 ? .milliseconds(Int64(milliseconds)) : .zero
    }

    /// Seconds since the Unix epoch, or nil when `b` is not an HTTP-date.
    static func parseHTTPDate(_ b: [UInt8], now: Date) -> Int64? {
        var c = DateCursor(bytes: b)
        let dayName = c.letters()
        let year: Int, month: Int, day: Int
        if c.take(","), c.take(" ") {
            if shortDays.contains(dayName) {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
                guard let d = c.digits(2), c.take(" "), let m = c.month(), c.take(" "), let y = c.digits(4), c.take(" ")
                else { return nil }
                (year, month, day) = (y, m, d)
            } else if longDays.contains(dayName) {  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
                guard let d = c.digits(2), c.take("-"), let m = c.month(), c.take("-"), let yy = c.digits(2), c.take(" ")
                else { return nil }
                (year, month, day) = (fullYear(twoDigit: yy, now: now), m, d)
            } else {
                return nil
            }
            guard let time = c.time(), c.take(" "), c.letters() == "gmt", c.atEnd,
                  let epoch = epochSeconds(year, month, day, time) else { return nil }
            return epoch
        }
        // asctime: Sun Nov  6 08:49:37 1994
        guard shortDays.contains(dayName), c.take(" "), let m = c.month(), c.take(" ") else { return nil }
        let d: Int?
        if c.take(" ") { d = c.digits(1) } else { d = c.digits(2) }
        guard let d, c.take(" "), let time = c.time(), c.take(" "), let y = c.digits(4), c.atEnd else { return nil }
        return epochSeconds(y, m, d, time)
    }

    private static let shortDays: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    private static let longDays: Set<String> = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    fileprivate static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// RFC 9110: a two-digit year more than 50 years in the future means the most recent past year with those digits.
    static func fullYear(twoDigit yy: Int, now: Date) -> Int {
        let nowYear = civilYear(daysSinceEpoch: Int((now.timeIntervalSince1970 / 86400).rounded(.down)))
        let candidate = nowYear - nowYear % 100 + yy
        return candidate > nowYear + 50 ? candidate - 100 : candidate
    }

    private static func epochSeconds(_ year: Int, _ month: Int, _ day: Int, _ time: (h: Int, m: Int, s: Int)) -> Int64? {
        guard (1...12).contains(month), (1...daysInMonth(year, month)).contains(day),
              time.h <= 23, time.m <= 59, time.s <= 60 else { return nil }
        let days = daysFromCivil(year, month, day)
        return Int64(days) * 86400 + Int64(time.h * 3600 + time.m * 60 + time.s)
    }

    private static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Year of the day `daysSinceEpoch` (inverse of `daysFromCivil`, year only).
    static func civilYear(daysSinceEpoch: Int) -> Int {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        return yoe + era * 400 + (mp >= 10 ? 1 : 0)
    }

    fileprivate static func isDigit(_ b: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
    }
}

extension RetryAfter {
    /// Byte cursor for HTTP-date parsing.
    fileprivate struct DateCursor {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func take(_ char: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: char) else { return false }
            index += 1
            return true
        }

        /// A run of ASCII letters, lowercased.
        mutating func letters() -> String {
            let start = index
            while index < bytes.count, (bytes[index] | 0x20) >= UInt8(ascii: "a"), (bytes[index] | 0x20) <= UInt8(ascii: "z") {
                index += 1
            }
            return String(decoding: bytes[start..<index].map { $0 | 0x20 }, as: UTF8.self)
        }

        /// Exactly `count` ASCII digits.
        mutating func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for b in bytes[index..<(index + count)] {
                guard RetryAfter.isDigit(b) else { return nil }
                value = value * 10 + Int(b - UInt8(ascii: "0"))
            }
            index += count
            return value
        }

        /// A three-letter month name, 1-based.
        mutating func month() -> Int? {
            let name = letters()
            return RetryAfter.months.firstIndex(of: name).map { $0 + 1 }
        }

        /// HH:MM:SS
        mutating func time() -> (h: Int, m: Int, s: Int)? {
            guard let h = digits(2), take(":"), let m = digits(2), take(":"), let s = digits(2) else { return nil }
            return (h, m, s)
        }
    }
}

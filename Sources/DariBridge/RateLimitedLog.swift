import Synchronization

/// Lets one event through per interval (the rest are counted, not logged):
/// a warning that every message in flight would repeat (a publish the broker
/// keeps refusing) is logged once per interval with how many were held back.
final class RateLimitedLog: Sendable {
    private struct State {
        var last: ContinuousClock.Instant? = nil
        var suppressed = 0
    }
    private let interval: Duration
    private let state = Mutex(State())

    init(interval: Duration) { self.interval = interval }

    /// nil: stay quiet; else how many were held back since the last one let through.
    func admit(now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { s in
            if let last = s.last, now - last < interval {
                s.suppressed += 1
                return nil
            }
            s.last = now
            defer { s.suppressed = 0 }
            return s.suppressed
        }
    }
}

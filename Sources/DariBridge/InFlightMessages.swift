import Synchronization

/// Message identities being handled right now in this process. A redelivery
/// of a message whose original is still in flight here (the connection dropped
/// while it waited for a retry or a slow Dari; the original's ack will be
/// dropped) waits for the original to finish instead of POSTing a second time,
/// then republishes the original's outcome.
final class InFlightMessages: Sendable {
    private let state = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    /// Registers `key`; false if it was already in flight (then do not `end` it).
    func begin(_ key: String) -> Bool {
        state.withLock { s in
            if s[key] != nil { return false }
            s[key] = []
            return true
        }
    }

    func end(_ key: String) {
        let waiters = state.withLock { $0.removeValue(forKey: key) } ?? []
        for w in waiters { w.resume() }
    }

    /// Returns when `key` is not (or no longer) in flight.
    func waitUntilDone(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = state.withLock { s in
                guard s[key] != nil else { return true }
                s[key]!.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

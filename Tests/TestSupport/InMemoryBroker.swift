import Synchronization
import DariBridge

/// A `MessageBroker` that keeps everything in memory: every publish attempt
/// and every ack, in one ordered list (so tests can check that the ack comes
/// after the publish). It can fail the first N publishes with `.transient`, and
/// answer `.unroutable` to mandatory messages (a missing reply_to queue).
package final class InMemoryBroker: MessageBroker {
    package enum Event: Sendable, Equatable {
        case published(OutgoingMessage)
        case publishFailed(OutgoingMessage, PublishFailure)
        case deferred(DeliveryToken, attempts: Int, delay: Duration)
        case acked(DeliveryToken)
        case requeued(DeliveryToken)
    }

    private struct State {
        var events: [Event] = []
        var transientFailuresLeft: Int
        var ackWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var deadIncarnations: Set<UInt64> = []
    }

    private let state: Mutex<State>
    private let mandatoryIsUnroutable: Bool
    private let mandatoryAlwaysFails: Bool

    package init(failFirstPublishes: Int = 0, mandatoryIsUnroutable: Bool = false, mandatoryAlwaysFails: Bool = false) {
        state = Mutex(State(transientFailuresLeft: failFirstPublishes))
        self.mandatoryIsUnroutable = mandatoryIsUnroutable
        self.mandatoryAlwaysFails = mandatoryAlwaysFails
    }

    package func publish(_ message: OutgoingMessage) async throws(PublishFailure) {
        let failure: PublishFailure? = state.withLock { s in
            if s.transientFailuresLeft > 0 {
                s.transientFailuresLeft -= 1
                let failure = PublishFailure.transient("scripted failure")
                s.events.append(.publishFailed(message, failure))
                return failure
            }
            if message.mandatory && mandatoryAlwaysFails {
                let failure = PublishFailure.transient("nacked (reply queue full)")
                s.events.append(.publishFailed(message, failure))
                return failure
            }
            if message.mandatory && mandatoryIsUnroutable {
                let failure = PublishFailure.unroutable("NO_ROUTE")
                s.events.append(.publishFailed(message, failure))
                return failure
            }
            s.events.append(.published(message))
            return nil
        }
        if let failure { throw failure }
    }

    package func deferMessage(_ message: InboundMessage, attempts: Int, delay: Duration) async throws(PublishFailure) {
        state.withLock { $0.events.append(.deferred(message.token, attempts: attempts, delay: delay)) }
    }

    package func ack(_ token: DeliveryToken) async {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.events.append(.acked(token))
            let acked = ackedTokensLocked(s).count
            let (due, waiting) = (s.ackWaiters.filter { $0.count <= acked }, s.ackWaiters.filter { $0.count > acked })
            s.ackWaiters = waiting
            return due.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    package func requeue(_ token: DeliveryToken) async {
        state.withLock { $0.events.append(.requeued(token)) }
    }

    package func isLive(_ token: DeliveryToken) -> Bool {
        state.withLock { !$0.deadIncarnations.contains(token.incarnation) }
    }

    /// Deliveries of this incarnation count as from a dead channel from now on.
    package func killIncarnation(_ incarnation: UInt64) {
        _ = state.withLock { $0.deadIncarnations.insert(incarnation) }
    }

    package var requeued: [DeliveryToken] {
        events.compactMap { if case .requeued(let token) = $0 { token } else { nil } }
    }

    /// Returns once at least `count` acks happened.
    package func waitForAcks(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = state.withLock { s in
                if ackedTokensLocked(s).count >= count { return true }
                s.ackWaiters.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func ackedTokensLocked(_ s: State) -> [DeliveryToken] {
        s.events.compactMap { if case .acked(let token) = $0 { token } else { nil } }
    }

    package var events: [Event] { state.withLock { $0.events } }

    /// Messages the broker confirmed, in order.
    package var published: [OutgoingMessage] {
        events.compactMap { if case .published(let message) = $0 { message } else { nil } }
    }

    /// Every publish attempt, failed or not, in order.
    package var publishAttempts: [OutgoingMessage] {
        events.compactMap {
            switch $0 {
            case .published(let message), .publishFailed(let message, _): message
            case .acked, .deferred, .requeued: nil
            }
        }
    }

    package var acked: [DeliveryToken] { state.withLock { ackedTokensLocked($0) } }
}

import DariBridge
import Logging
import RabbitMQ

/// The readiness watchdog: a consumer can stop receiving without anything
/// telling the client (connected, heartbeats fine, nothing delivered: the
/// broker-side channel or queue process stuck). Every
/// `DARI_BRIDGE_STALL_CHECK_INTERVAL_MS` it looks at what arrived; when
/// nothing did and the consumer has room (fewer deliveries held unacked than
/// the prefetch), it asks the broker how many messages are ready on the input
/// queue (a passive `queue.declare` on a second channel of the worker's
/// connection, so a stuck consumer channel cannot hide the answer). Messages
/// ready, room, and no delivery for `DARI_BRIDGE_STALL_TIMEOUT_MS`: stalled.
extension RabbitMQBroker {
    /// Returns true once the consumer on `conn` looks stalled (logged, counted
    /// in `stalls`, `/readyz` 503 until deliveries flow again); false when
    /// cancelled, or when the check itself failed (that failure ends the
    /// connection: the consumer's end follows, and the caller reconnects).
    func watchForStall(on conn: AMQPConnection, activity: ConsumerActivity, timeout: Duration) async -> Bool {
        let interval = Duration.milliseconds(config.stallCheckIntervalMs)
        let prefetch = config.effectivePrefetch
        // A check that gets no answer in this time counts as a stall as well.
        let checkTimeout = min(timeout, .seconds(connectionOptions.rpcTimeoutSeconds))
        let clock = ContinuousClock()
        var seen = activity.delivered.load(ordering: .relaxed)
        var quietSince = clock.now
        while true {
            do { try await Task.sleep(for: interval) } catch { return false }
            let delivered = activity.delivered.load(ordering: .relaxed)
            let held = activity.held
            if delivered != seen || held >= prefetch {
                // Deliveries flow, or the prefetch is used up: the broker rightly sends nothing.
                seen = delivered
                quietSince = clock.now
                continue
            }
            let ready: UInt32
            do {
                ready = try await conn.queueCounts(config.queue, timeout: checkTimeout).messageCount
            } catch let error as AMQPError where error.isTimeout {
                stalls.add(1, ordering: .relaxed)
                metrics.stalls.increment()
                activity.stalled.store(true, ordering: .relaxed)
                logger.warning("consumer stalled: the broker did not answer a check of the queue; reconnecting",
                               metadata: ["queue": "\(config.queue)", "timeout": "\(checkTimeout)"])
                return false
            } catch {
                return false
            }
            if activity.delivered.load(ordering: .relaxed) != seen { continue }
            if ready == 0 {
                quietSince = clock.now
                if activity.stalled.exchange(false, ordering: .relaxed) {
                    logger.info("no message waits on the queue any more; ready")
                }
                continue
            }
            let quiet = clock.now - quietSince
            if quiet >= timeout {
                stalls.add(1, ordering: .relaxed)
                metrics.stalls.increment()
                activity.stalled.store(true, ordering: .relaxed)
                logger.warning("consumer stalled: messages wait on the queue but none was delivered; consuming again", metadata: [
                    "queue": "\(config.queue)", "ready": "\(ready)", "held_unacked": "\(held)", "prefetch": "\(prefetch)",
                    "quiet_for": "\(quiet)",
                ])
                return true
            }
        }
    }
}

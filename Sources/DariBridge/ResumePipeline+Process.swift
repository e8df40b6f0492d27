/// Consuming a stream of deliveries with at most `settings.concurrency` in
/// hand at once.
extension ResumePipeline {
    /// Handles deliveries concurrently until the sequence ends, then waits for
    /// those in flight. Cancel the calling task to abandon what is in flight
    /// (those messages stay unacked and go back to the queue). Deliveries that
    /// arrive once `isStopping()` is true, and those still waiting for a slot
    /// when the sequence ends, are not started: they go back to the broker at
    /// once (reject with requeue), not held through the drain.
    package func process<S: AsyncSequence & Sendable>(_ deliveries: S, isStopping: @escaping @Sendable () -> Bool) async where S.Element == InboundMessage {
        await withDiscardingTaskGroup { group in
            do {
                for try await message in deliveries {
                    if isStopping() {
                        await requeueUnstarted([message])
                        continue
                    }
                    if slots.admit(message) {
                        group.addTask { await self.runSlot(first: message, isStopping: isStopping) }
                    }
                }
            } catch {
                logger.warning("delivery stream ended with an error", metadata: ["error": "\(LogSafe.text("\(error)"))"])
            }
            await requeueUnstarted(slots.close())
        }
    }

    /// One slot: its first message, then whatever waits, until nothing does.
    private func runSlot(first: InboundMessage, isStopping: @escaping @Sendable () -> Bool) async {
        var message: InboundMessage? = first
        while let m = message {
            await handle(m)
            message = nextLive(isStopping: isStopping)
        }
    }

    /// The next waiting delivery whose channel is still current (one of a
    /// dead channel is redelivered by the broker: starting it would POST twice).
    private func nextLive(isStopping: @escaping @Sendable () -> Bool) -> InboundMessage? {
        while let m = slots.next() {
            if isStopping() {
                Task { await self.requeueUnstarted([m]) }
                continue
            }
            if broker.isLive(m.token) { return m }
        }
        return nil
    }

    func requeueUnstarted(_ messages: [InboundMessage]) async {
        for m in messages {
            metrics.requeued.increment()
            await broker.requeue(m.token)
        }
    }

    /// Deliveries waiting for a slot (prefetch above the concurrency).
    package var waitingDeliveries: Int { slots.waitingCount }
}

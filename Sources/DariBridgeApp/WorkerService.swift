import DariBridge
import Logging
import ServiceLifecycle

/// The worker as a Service: consumes until graceful shutdown (SIGTERM /
/// SIGINT), then stops taking deliveries, lets in-flight messages finish up
/// to the drain deadline, acks what finished, leaves the rest unacked (the
/// broker requeues them when the connection closes) and closes the connection.
public final class WorkerService: Service, Sendable {
    public let broker: RabbitMQBroker
    public let pipeline: ResumePipeline
    let drainTimeout: Duration
    let logger: Logger

    public init(broker: RabbitMQBroker, pipeline: ResumePipeline, drainTimeout: Duration, logger: Logger) {
        self.broker = broker
        self.pipeline = pipeline
        self.drainTimeout = drainTimeout
        self.logger = logger
    }

    public func run() async throws {
        let broker = self.broker
        let pipeline = self.pipeline
        let supervisor = Task { await broker.run() }
        let processing = Task {
            await pipeline.process(broker.deliveries, isStopping: { broker.isStopping })
        }
        // Returns at graceful shutdown; throws if the task is cancelled instead.
        try? await gracefulShutdown()
        let inFlight = pipeline.metrics.inFlight.load(ordering: .relaxed)
        logger.info("shutting down: no new deliveries; draining", metadata: ["in_flight": "\(inFlight)", "drain_timeout": "\(drainTimeout)"])
        // The deadline runs from the signal on, whatever the broker does.
        let drainTimeout = self.drainTimeout
        let deadline = Task {
            try await Task.sleep(for: drainTimeout)
            processing.cancel()
        }
        let stopping = Task { await broker.stopConsuming() }
        await processing.value
        deadline.cancel()
        await stopping.value
        let left = pipeline.metrics.abandoned.load(ordering: .relaxed)
        supervisor.cancel()
        await supervisor.value
        await broker.close()
        if left > 0 {
            logger.warning("drain deadline passed; unfinished messages go back to the queue", metadata: ["unfinished": "\(left)"])
        }
        logger.info("stopped", metadata: ["received": "\(pipeline.metrics.received.load(ordering: .relaxed))"])
    }
}

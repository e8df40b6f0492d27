import DariBridge
import Logging
import ServiceLifecycle

/// The worker as a Service: consumes until graceful shutdown (SIGTERM /
/// SIGINT), then stops taking deliveries, lets in-flight messages finish up
/// to the drain deadline, acks what finished, leaves the rest unacked (the
/// broker requeues them when the connection closes) and closes the connection.
///
/// Structured: the broker adapter (a Service owning the connection) and the
/// pipeline run as child tasks; graceful shutdown reaches both through the
/// task tree (the broker stops consuming, the drain deadline starts); once
/// the pipeline is done the broker's task is cancelled, which closes the
/// connection. Cancelling `run()` itself abandons what is in flight at once.
package final class WorkerService: Service, Sendable {
    package let broker: RabbitMQBroker
    package let pipeline: ResumePipeline
    let drainTimeout: Duration
    let logger: Logger

    package init(broker: RabbitMQBroker, pipeline: ResumePipeline, drainTimeout: Duration, logger: Logger) {
        self.broker = broker
        self.pipeline = pipeline
        self.drainTimeout = drainTimeout
        self.logger = logger
    }

    package func run() async throws {
        let broker = self.broker
        await withDiscardingTaskGroup { group in
            group.addTask { await broker.run() }
            await processUntilDrained()
            group.cancelAll()  // closes the connection: acks queued before are written first
        }
        let left = pipeline.metrics.abandoned.load(ordering: .relaxed)
        if left > 0 {
            logger.warning("drain deadline passed; unfinished messages go back to the queue", metadata: ["unfinished": "\(left)"])
        }
        logger.info("stopped", metadata: ["received": "\(pipeline.metrics.receivedNow.load(ordering: .relaxed))"])
    }

    /// The pipeline until its delivery stream ends (graceful shutdown: the
    /// broker stops consuming) and what is in flight has finished, or until
    /// the drain deadline, counted from the signal whatever the broker does,
    /// cancels it (the unfinished messages stay unacked).
    private func processUntilDrained() async {
        let broker = self.broker, pipeline = self.pipeline, drainTimeout = self.drainTimeout, logger = self.logger
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await pipeline.process(broker.deliveries, isStopping: { broker.isStopping }) }
            group.addTask {
                // Throws when cancelled: the pipeline finished first, or run() was cancelled.
                guard (try? await gracefulShutdown()) != nil else { return }
                let inFlight = pipeline.metrics.inFlightNow.load(ordering: .relaxed)
                logger.info("shutting down: no new deliveries; draining", metadata: ["in_flight": "\(inFlight)", "drain_timeout": "\(drainTimeout)"])
                try? await Task.sleep(for: drainTimeout)
            }
            await group.next()
            group.cancelAll()
        }
    }
}

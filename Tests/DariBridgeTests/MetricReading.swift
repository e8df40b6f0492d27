import DariBridge
import Metrics
import MetricsTestKit

extension PipelineMetrics {
    /// Metrics a test can read back (MetricsTestKit's factory, injected: no global bootstrap).
    static func readable() -> PipelineMetrics { PipelineMetrics(factory: TestMetrics()) }

    private var kit: TestMetrics {
        guard let kit = factory as? TestMetrics else { fatalError("build the pipeline with metrics: .readable()") }
        return kit
    }

    func value(_ counter: KeyPath<PipelineMetrics, Counter>) -> Int {
        guard let total = try? kit.expectCounter(self[keyPath: counter]).totalValue else { return -1 }
        return Int(total)
    }

    var inFlightValue: Int {
        guard let last = try? kit.expectMeter(inFlight).lastValue else { return -1 }
        return Int(last)
    }
}

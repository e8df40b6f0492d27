import CMallocTuning
import Logging
import ServiceLifecycle

/// Once the worker consumes, gives back the pages of its own executable that only
/// start-up touched (`dari_page_out_executable`: madvise MADV_PAGEOUT on the binary's
/// read-only mappings). The static binary carries swift-argument-parser, Hummingbird,
/// swift-prometheus and the rest; parsing the configuration and the runtime's first
/// protocol-conformance scans touch pages of all of them, which then stayed resident for
/// the life of the process. Pages in use come back on their next touch (minor faults,
/// from the page cache). Measured in the README (Benchmark, Budget).
struct StartupPageOut: Service {
    let broker: RabbitMQBroker
    let logger: Logger

    func run() async throws {
        while !broker.isReady && !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
        }
        if broker.isReady && !Task.isShuttingDownGracefully {
            // A moment for the first deliveries' code to be in use before the cut.
            try? await Task.sleep(for: .seconds(1))
            let kb = dari_page_out_executable()
            logger.debug("paged out the executable's start-up pages", metadata: ["resident_kb_before": "\(kb)"])
        }
        try? await gracefulShutdown()
    }
}

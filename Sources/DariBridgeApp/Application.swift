import ArgumentParser
import DariBridge
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Prometheus
import ServiceLifecycle

/// The `dari-bridge` command line (swift-argument-parser, `DariBridgeCommand`):
/// `run` (the default), `publish`, `help`, `--help`, `--version`,
/// `--generate-completion-script`. Parse errors and bad settings print one line
/// on stderr and exit 2.
package enum Application {
    package static func main(arguments: [String], environment: [String: String]) async -> Int32 {
        let command: any ParsableCommand
        do {
            command = try DariBridgeCommand.parseAsRoot(arguments)
        } catch {
            return report(error)
        }
        switch command {
        case let publish as PublishCommand:
            return await publish.run(environment: environment)
        case let run as RunCommand:
            let config: Configuration
            do {
                config = try Configuration.load(flags: run.settings.values, environment: environment)
            } catch {
                writeToStandardError("dari-bridge: \(error)\n")
                return 2
            }
            return await runWorker(config)
        default:
            // `help [command]` and `<command> --help` parse into argument-parser's own help command.
            var builtIn = command
            do {
                try builtIn.run()
                return 0
            } catch {
                return report(error)
            }
        }
    }

    /// `--help`, `--version`, `--generate-completion-script`: the text on stdout, 0.
    /// Anything else: one line on stderr, 2.
    static func report(_ error: any Error) -> Int32 {
        if DariBridgeCommand.exitCode(for: error) == .success {
            print(DariBridgeCommand.fullMessage(for: error))
            return 0
        }
        writeToStandardError("dari-bridge: \(oneLine(DariBridgeCommand.message(for: error)))\n")
        return 2
    }

    /// The process-wide log handler for the configured format and level.
    static func bootstrapLogging(_ level: Logger.Level, format: Configuration.LogFormat) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = TextLogHandler(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }

    static func runWorker(_ config: Configuration) async -> Int32 {
        bootstrapLogging(config.logLevel, format: config.logFormat)
        let logger = Logger(label: "dari-bridge")
        let client = DariClient(concurrency: config.concurrency, policy: config.urlPolicy)
        // One registry for the worker: every metric goes through swift-metrics
        // into it (no global MetricsSystem bootstrap); /metrics renders it.
        let registry = PrometheusCollectorRegistry()
        let factory = prometheusFactory(registry)
        let brokerMetrics = BrokerMetrics(config: config, factory: factory)
        let broker = RabbitMQBroker(config: config, logger: logger, metrics: brokerMetrics)
        let metrics = PipelineMetrics(factory: factory)
        let pipeline = ResumePipeline(
            settings: config.pipelineSettings,
            executor: config.executor(transport: client),
            broker: broker, metrics: metrics, logger: logger)
        let worker = WorkerService(broker: broker, pipeline: pipeline, drainTimeout: .milliseconds(config.drainTimeoutMs), logger: logger)
        var services: [any Service] = []
        if config.httpPort != 0 {
            services.append(HealthServer(host: config.httpHost, port: config.httpPort, broker: broker, brokerMetrics: brokerMetrics,
                                         registry: registry, logger: logger))
        }
        services.append(worker)
        if config.webhook.isOn {
            // After the worker: stops taking webhooks (and finishes the ones being
            // stored) before the worker drains and closes the broker connection.
            services.append(WebhookServer(settings: config.webhook, broker: broker, metrics: WebhookMetrics(factory: factory), logger: logger))
        }
        logger.info("starting", metadata: [
            "version": "\(DariBridgeVersion.current)", "brokers": "\(config.amqpURLs.map(\.description).joined(separator: ","))", "queue": "\(config.queue)",
            "results_exchange": "\(config.resultsExchange)", "concurrency": "\(config.concurrency)", "prefetch": "\(config.effectivePrefetch)",
            "allowed_hosts": "\(config.allowedHosts.joined(separator: ","))",
        ])
        if config.tlsVerificationOff {
            logger.warning("TLS peer verification is off (verify_none)", metadata: ["broker": "\(config.amqpURLs.filter { $0.tlsOptions.verifyPeer == false }.map(\.description).joined(separator: ","))"])
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        var code: Int32 = 0
        do {
            try await group.run()
        } catch {
            logger.error("stopped with an error", metadata: ["error": "\(error)"])
            code = 1
        }
        try? await client.shutdown()
        return code
    }

    /// swift-prometheus's factory on `registry`, with the duration buckets of `PipelineMetrics`.
    package static func prometheusFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = PipelineMetrics.durationBuckets
        return factory
    }
}

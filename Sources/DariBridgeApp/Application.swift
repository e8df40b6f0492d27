import DariBridge
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import ServiceLifecycle

/// The `dari-bridge` command line: `run` (the default), `publish`, `--help`.
public enum Application {
    public static func main(arguments: [String], environment: [String: String]) async -> Int32 {
        var args = arguments
        let command = args.first.flatMap { $0.hasPrefix("-") ? nil : $0 } ?? "run"
        if args.first == command { args.removeFirst() }
        if args.contains("--help") || args.contains("-h") || command == "help" {
            print(usage)
            return 0
        }
        if args.contains("--version") {
            print("dari-bridge \(DariBridgeVersion.current)")
            return 0
        }
        switch command {
        case "run":
            let config: Configuration
            do {
                config = try Configuration.load(arguments: args, environment: environment)
            } catch {
                writeToStandardError("dari-bridge: \(error)\n")
                return 2
            }
            return await runWorker(config)
        case "publish":
            return await PublishCommand.main(arguments: args, environment: environment)
        default:
            writeToStandardError("dari-bridge: unknown command \(command) (see --help)\n")
            return 2
        }
    }

    static func bootstrapLogging(_ level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    static func runWorker(_ config: Configuration) async -> Int32 {
        bootstrapLogging(config.logLevel)
        let logger = Logger(label: "dari-bridge")
        let client = DariClient(concurrency: config.concurrency, policy: config.urlPolicy)
        let broker = RabbitMQBroker(config: config, logger: logger)
        let metrics = PipelineMetrics()
        let pipeline = ResumePipeline(
            settings: config.pipelineSettings,
            executor: config.executor(transport: client),
            broker: broker, metrics: metrics, logger: logger)
        let worker = WorkerService(broker: broker, pipeline: pipeline, drainTimeout: .milliseconds(config.drainTimeoutMs), logger: logger)
        var services: [any Service] = []
        if config.httpPort != 0 {
            services.append(HealthServer(host: config.httpHost, port: config.httpPort, broker: broker, metrics: metrics, logger: logger))
        }
        services.append(worker)  // last in, first to shut down
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

    static let usage = """
    dari-bridge \(DariBridgeVersion.current): resume Dari workflows from RabbitMQ.

    Usage:
      dari-bridge [run] [options]         consume resume requests until SIGTERM/SIGINT
      dari-bridge publish <resume-url> [--var key=value ...] [--variables-json '{...}']
                          [--message-id ID] [--correlation-id ID] [--wait] [--wait-timeout-s N]
                                          publish one resume request (persistent, confirmed);
                                          with --wait, print the outcome that comes back
      dari-bridge --help | --version

    Options (each also an environment variable; a flag wins):
    \(Configuration.helpText)
    """
}

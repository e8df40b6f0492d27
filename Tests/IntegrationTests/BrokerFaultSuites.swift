import Testing

/// The suites that start, stop, kill or load brokers and worker processes
/// (fault node, three-node cluster, definitions import, TLS nodes) run one
/// after another: on two cores, run side by side, they starved each other and
/// timing-dependent scenarios (a memory alarm set while messages still flow)
/// raced. Each nested suite is serialized too.
@Suite(.serialized) struct BrokerFaultSuites {}

import CRabbitMQ
import Glibc

// One TCP transmit per pass instead of one per frame run.
//
// librabbitmq writes every frame with its own send(2): a publish is three
// (method and header with MSG_MORE, the body without), so each publish is
// pushed to the network on its own, and so is every ack. Under load the
// connection thread runs a pass of queued commands (a dozen publishes and
// acks is usual at concurrency 64), and they left in about as many TCP
// segments (100 publishes of one pass: 49 and 114 segments with data in two
// runs, where Linux's autocorking merged some). On loopback the sender's send(2) also does the
// receiver's softirq work and wakes the broker's reader: the transmit was
// about two thirds of this thread's system time (perf, session 6).
//
// With TCP_CORK set for the pass, the frames of its commands wait in the
// socket and leave together when the cork is taken out (Linux pushes the
// queued data at once on TCP_CORK=0, and never holds it longer than 200 ms
// while corked): 1 segment with data for those 100 publishes (CorkedPassTests). It
// works below TLS as well: OpenSSL's records go into the same socket. A pass
// with a single command is not corked (two more system calls for nothing).
// Measured (alternating runs, instant Dari, concurrency 64, six pairs):
// worker CPU 57.2 -> 51.6 µs a message (medians), 10,496 -> 11,172 msg/s.

extension AMQPIO {
    /// Holds what the following commands write until `uncork()`.
    func cork() {
        guard !corked, let state else { return }
        corked = setCork(1, fd: amqp_get_sockfd(state))
    }

    /// Sends what is held. A synchronous operation calls it first (`beginRPC`):
    /// its request must not wait behind the cork.
    func uncork() {
        guard corked else { return }
        corked = false
        if let state { _ = setCork(0, fd: amqp_get_sockfd(state)) }
    }

    private func setCork(_ value: Int32, fd: Int32) -> Bool {
        var value = value
        guard setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            let code = errno
            if !corkFailed {
                corkFailed = true
                logger.debug("TCP_CORK not available; frames are sent one by one", metadata: ["errno": "\(code)"])
            }
            return false
        }
        return true
    }
}

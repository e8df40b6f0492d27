import CRabbitMQ

// Settling deliveries. A single ack is only recorded and goes out at the end
// of the connection thread's pass over its queued commands (`flushAcks`), when
// the AckCoalescer can turn a run of them into one `basic.ack` with `multiple`.
// Rejects and nacks are written at once. A multiple nack or ack first sends the
// single acks already asked for, so it never settles one of them another way.

extension AMQPIO {
    func ack(_ tag: UInt64, multiple: Bool) {
        guard failure == nil else { return }
        guard multiple else {
            acks.requestAck(tag)
            return
        }
        flushAcks()
        guard failure == nil else { return }
        let status = amqp_basic_ack(state, channel, tag, 1)
        ackFramesSent += 1
        if status != AMQP_STATUS_OK.rawValue { fail(.library(status, "basic.ack")) }
        acks.settled(tag, multiple: true)
    }

    func reject(_ tag: UInt64, requeue: Bool) {
        guard failure == nil else { return }
        let status = amqp_basic_reject(state, channel, tag, requeue ? 1 : 0)
        if status != AMQP_STATUS_OK.rawValue { fail(.library(status, "basic.reject")) }
        acks.settled(tag, multiple: false)
    }

    func nack(_ tag: UInt64, multiple: Bool, requeue: Bool) {
        guard failure == nil else { return }
        if multiple {
            flushAcks()
            guard failure == nil else { return }
        }
        let status = amqp_basic_nack(state, channel, tag, multiple ? 1 : 0, requeue ? 1 : 0)
        if status != AMQP_STATUS_OK.rawValue { fail(.library(status, "basic.nack")) }
        acks.settled(tag, multiple: multiple)
    }

    /// Sends the acks asked for since the last flush.
    func flushAcks() {
        guard acks.hasRequested else { return }
        guard failure == nil else {
            acks.dropRequested()
            return
        }
        acks.drain { tag, multiple in
            guard failure == nil else { return }
            let status = amqp_basic_ack(state, channel, tag, multiple ? 1 : 0)
            ackFramesSent += 1
            if status != AMQP_STATUS_OK.rawValue { fail(.library(status, "basic.ack")) }
        }
    }
}

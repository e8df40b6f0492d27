#!/usr/bin/env python3
"""A Dari "webhook and wait" step handled over AMQP only: dari-bridge verifies
Dari's webhook and publishes it (routing key webhook.wait); this service decides,
publishes a resume request, and reads the outcome dari-bridge sends back."""
import json, os
import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
WEBHOOKS = os.environ.get("DARI_BRIDGE_WEBHOOK_EXCHANGE", "dari.webhooks")
REQUESTS = os.environ.get("DARI_BRIDGE_QUEUE", "dari.resume.requests")
QUEUE = os.environ.get("SERVICE_QUEUE", "approvals.webhook.wait")
LIMIT = int(os.environ.get("SERVICE_MAX_WEBHOOKS", "0"))  # 0: run forever

def decide(variables):  # your logic: here, small amounts are approved
    return {"user_response": "approved" if variables.get("amount", 0) < 100 else "rejected"}

conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
ch, outcomes = conn.channel(), conn.channel()
ch.confirm_delivery()  # basic_publish returns once the broker has the request
ch.exchange_declare(WEBHOOKS, "topic", durable=True)
ch.queue_declare(QUEUE, durable=True)
ch.queue_bind(QUEUE, WEBHOOKS, "webhook.wait")
replies = outcomes.queue_declare("", exclusive=True).method.queue  # outcomes come back here
handled = 0
for method, props, body in ch.consume(QUEUE):
    webhook = json.loads(body)
    request = {"resume_workflow_url": webhook["resume_workflow_url"], "variables": decide(webhook.get("variables", {}))}
    # The webhook's id as message_id: one id names one decision.
    ch.basic_publish("", REQUESTS, json.dumps(request), pika.BasicProperties(
        message_id=props.message_id, reply_to=replies, delivery_mode=2, content_type="application/json"))
    ch.basic_ack(method.delivery_tag)  # after the request is stored
    for _, _, outcome in outcomes.consume(replies, auto_ack=True, inactivity_timeout=60):
        print("outcome:", outcome.decode() if outcome else "none within 60 s", flush=True)
        break
    outcomes.cancel()
    handled += 1
    if handled == LIMIT:
        break
conn.close()

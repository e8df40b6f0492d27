#!/usr/bin/env bash
# Runs examples/webhook_service.py (the README's example service), installing
# its one dependency, pika, from PyPI when it is missing. The environment
# carries its settings (AMQP_URL, DARI_BRIDGE_WEBHOOK_EXCHANGE, DARI_BRIDGE_QUEUE,
# SERVICE_QUEUE, SERVICE_MAX_WEBHOOKS). IntegrationTests' WebhookExampleTests runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "webhook-example.sh: $python is not installed" >&2; exit 1; }
if ! "$python" -c 'import pika' 2>/dev/null; then
  echo "webhook-example.sh: installing pika" >&2
  "$python" -m pip install --quiet 'pika>=1.3,<2' >&2 || "$python" -m pip install --quiet --break-system-packages 'pika>=1.3,<2' >&2
fi
exec "$python" examples/webhook_service.py

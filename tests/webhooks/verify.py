"""Verifies webhook deliveries with the PyPI `standardwebhooks` package, an implementation
independent of the service's. Reads JSON lines {"secret", "body", "headers"} on stdin and
exits non-zero at the first delivery whose signature does not verify."""
import json
import sys

from standardwebhooks.webhooks import Webhook

count = 0
for line in sys.stdin:
    if not line.strip():
        continue
    item = json.loads(line)
    Webhook(item["secret"]).verify(item["body"], item["headers"])
    count += 1
print(f"verified {count} deliveries")

"""Verifies captured webhook requests with the Standard Webhooks reference library
(`standardwebhooks` on PyPI), for tests/api/webhooks.rs.

Usage: verify_webhooks.py <whsec_secret> < messages.json, where messages.json is a list of
{"headers": {...}, "body": "..."}. Prints a JSON list: whether each one verifies.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    hook = Webhook(sys.argv[1])
    verdicts = []
    for message in json.load(sys.stdin):
        try:
            hook.verify(message["body"], message["headers"])
            verdicts.append(True)
        except WebhookVerificationError:
            verdicts.append(False)
    json.dump(verdicts, sys.stdout)


if __name__ == "__main__":
    main()

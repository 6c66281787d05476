"""Signs a request body as Slack signs it, with Slack's own SDK (slack_sdk.signature).
Usage: slack_signature.py SIGNING_SECRET TIMESTAMP < body; prints the X-Slack-Signature value."""
import sys
import time

from slack_sdk.signature import SignatureVerifier

secret, timestamp = sys.argv[1], sys.argv[2]
body = sys.stdin.buffer.read().decode("utf-8")
verifier = SignatureVerifier(signing_secret=secret)
signature = verifier.generate_signature(timestamp=timestamp, body=body)
# The SDK's own check accepts it (it refuses old timestamps itself, as depot must).
fresh = abs(time.time() - int(timestamp)) <= 60 * 5
assert verifier.is_valid(body=body, timestamp=timestamp, signature=signature) == fresh
print(signature)

"""Builds an EasyPost webhook Event for a tracker, signed as EasyPost signs it, and proves the
signature with EasyPost's own client library (easypost.util.validate_webhook) before handing it
to the test. Usage: easypost_event.py SECRET SPEC_JSON; prints {"body": ..., "signature": ...}.

SPEC_JSON: {"id": "evt_...", "description": "tracker.updated", "tracking_code": ..., "carrier": ...,
"status": ..., "details": [{"status": ..., "datetime": ..., "message": ..., "city": ...}, ...]}
"""
import hashlib
import hmac
import json
import sys
import unicodedata

from easypost.util import validate_webhook

secret, spec = sys.argv[1], json.loads(sys.argv[2])
details = [
    {
        "object": "TrackingDetail",
        "message": d.get("message", ""),
        "description": "",
        "status": d["status"],
        "status_detail": "status_update",
        "datetime": d["datetime"],
        "source": spec["carrier"],
        "carrier_code": "",
        "tracking_location": {
            "object": "TrackingLocation",
            "city": d.get("city"),
            "state": d.get("state"),
            "country": "US",
            "zip": None,
        },
    }
    for d in spec["details"]
]
updated = details[-1]["datetime"] if details else "2026-12-01T00:00:00Z"
tracker = {
    "id": "trk_" + hashlib.sha1(spec["tracking_code"].encode()).hexdigest()[:24],
    "object": "Tracker",
    "mode": "test",
    "tracking_code": spec["tracking_code"],
    "status": spec["status"],
    "status_detail": "status_update",
    "created_at": "2026-12-01T00:00:00Z",
    "updated_at": updated,
    "signed_by": None,
    "weight": None,
    "est_delivery_date": None,
    "shipment_id": None,
    "carrier": spec["carrier"],
    "tracking_details": details,
    "fees": [],
    "carrier_detail": None,
    "public_url": "https://track.easypost.com/" + spec["tracking_code"],
}
event = {
    "id": spec["id"],
    "object": "Event",
    "mode": "test",
    "description": spec.get("description", "tracker.updated"),
    "previous_attributes": {"status": "in_transit"},
    "created_at": updated,
    "updated_at": updated,
    "result": tracker,
    "status": "pending",
    "pending_urls": ["https://depot.example.test/api/v1/integrations/carriers/easypost"],
    "completed_urls": [],
}
body = json.dumps(event).encode()
key = unicodedata.normalize("NFKD", secret).encode("utf8")
signature = "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()
# EasyPost's library must accept what the test will send.
assert validate_webhook(body, {"X-Hmac-Signature": signature}, secret)["id"] == spec["id"]
print(json.dumps({"body": body.decode(), "signature": signature}))

"""A node's BMC for the Redfish tests: the calls depot makes of a BMC, answered with DMTF's
resource shapes (service root, Systems, LogServices, a SEL LogEntryCollection as in DMTF's public
mockups, EventService subscriptions per DSP0268). No emulator on PyPI answers EventService
subscriptions or log services (sushy-tools' does not), so this one checks depot's requests
strictly: basic authentication, the subscription's required properties and their types.

Usage: bmc.py PORT USER PASSWORD. GET /test/subscriptions lists what was subscribed."""
import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
subscriptions = []
SEL = {
    "@odata.type": "#LogEntryCollection.LogEntryCollection",
    "@odata.id": "/redfish/v1/Systems/1/LogServices/SEL/Entries",
    "Name": "System Event Log Entries",
    "Members@odata.count": 2,
    "Members": [
        {"@odata.type": "#LogEntry.v1_15_0.LogEntry", "@odata.id": "/redfish/v1/Systems/1/LogServices/SEL/Entries/1",
         "Id": "1", "Name": "Log Entry 1", "EntryType": "SEL", "Severity": "Critical",
         "Created": "2026-12-03T20:01:12Z", "SensorType": "Fan", "Message": "Fan 2 speed below lower critical threshold",
         "MessageId": "ResourceEvent.1.0.ResourceErrorsDetected", "SensorNumber": 42},
        {"@odata.type": "#LogEntry.v1_15_0.LogEntry", "@odata.id": "/redfish/v1/Systems/1/LogServices/SEL/Entries/2",
         "Id": "2", "Name": "Log Entry 2", "EntryType": "SEL", "Severity": "OK",
         "Created": "2026-12-03T19:00:00Z", "SensorType": "Power Supply", "Message": "PSU 1 presence detected"},
    ],
}
RESOURCES = {
    "/redfish/v1": {"@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot", "RedfishVersion": "1.17.0",
                    "Systems": {"@odata.id": "/redfish/v1/Systems"},
                    "EventService": {"@odata.id": "/redfish/v1/EventService"}},
    "/redfish/v1/Systems": {"@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                            "Members@odata.count": 1, "Members": [{"@odata.id": "/redfish/v1/Systems/1"}]},
    "/redfish/v1/Systems/1/LogServices": {"@odata.type": "#LogServiceCollection.LogServiceCollection",
                                          "Members@odata.count": 1,
                                          "Members": [{"@odata.id": "/redfish/v1/Systems/1/LogServices/SEL"}]},
    "/redfish/v1/Systems/1/LogServices/SEL/Entries": SEL,
}


class Bmc(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=None, headers=()):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            return True
        self.answer(401, {"error": {"code": "Base.1.0.NoValidSession", "message": "authentication required"}},
                    [("WWW-Authenticate", 'Basic realm="BMC"')])
        return False

    def do_GET(self):
        if self.path == "/test/subscriptions":
            return self.answer(200, subscriptions)
        if not self.authorized():
            return
        body = RESOURCES.get(self.path.rstrip("/"))
        self.answer(200 if body else 404, body or {"error": {"code": "Base.1.0.ResourceMissingAtURI"}})

    def do_POST(self):
        if not self.authorized():
            return
        if self.path.rstrip("/") != "/redfish/v1/EventService/Subscriptions":
            return self.answer(405, {"error": {"code": "Base.1.0.ActionNotSupported"}})
        sub = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        problems = []
        if not isinstance(sub.get("Destination"), str) or not sub["Destination"].startswith(("http://", "https://")):
            problems.append("Destination must be a URI")
        if sub.get("Protocol") != "Redfish":
            problems.append("Protocol must be Redfish")
        if not isinstance(sub.get("Context"), str):
            problems.append("Context must be a string")
        headers = sub.get("HttpHeaders", [])
        if not (isinstance(headers, list) and all(isinstance(h, dict) for h in headers)):
            problems.append("HttpHeaders must be an array of objects")
        if problems:
            return self.answer(400, {"error": {"code": "Base.1.0.PropertyValueFormatError", "message": "; ".join(problems)}})
        sub["Id"] = str(len(subscriptions) + 1)
        sub["@odata.id"] = f"/redfish/v1/EventService/Subscriptions/{sub['Id']}"
        subscriptions.append(sub)
        self.answer(201, sub, [("Location", sub["@odata.id"])])


ThreadingHTTPServer(("127.0.0.1", port), Bmc).serve_forever()

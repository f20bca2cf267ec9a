"""An OTLP/HTTP trace receiver for tests: decodes each `POST /v1/traces` body with the
OpenTelemetry project's own protobuf classes (`opentelemetry-proto`) and prints every span as
one JSON line: its name, ids, parent, service name and attributes. A body that does not decode
is answered 400 and printed as {"error": ...}, so the test sees it.

Prints `listening <port>` first (it binds 127.0.0.1:0), then runs until killed."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            if self.path != "/v1/traces":
                raise ValueError(f"unexpected path {self.path}")
            if self.headers.get("content-type") != "application/x-protobuf":
                raise ValueError(f"unexpected content-type {self.headers.get('content-type')}")
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
        except (DecodeError, ValueError) as err:
            print(json.dumps({"error": str(err)}), flush=True)
            self.send_response(400)
            self.end_headers()
            return
        for resource_spans in request.resource_spans:
            resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    print(
                        json.dumps(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "service_name": resource.get("service.name"),
                                "attributes": {
                                    a.key: value_of(a.value) for a in span.attributes
                                },
                            }
                        ),
                        flush=True,
                    )
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Receiver)
print(f"listening {server.server_address[1]}", flush=True)
sys.stdout.flush()
server.serve_forever()

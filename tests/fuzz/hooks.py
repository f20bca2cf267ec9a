"""Schemathesis hooks for icp-service's spec fuzzing (tests/api/fuzz_spec.rs).

`POST /v1/jobs` has two rules that span its parameters, and OpenAPI 3.1 has no way to state a
rule between parameters or between a parameter and the body's media type:

- its query parameters are a CSV upload's options: with a JSON body the options travel in the
  body's `options`, and any query parameter is refused (422);
- `latitude`, `longitude` and `radius` come together or not at all (422 otherwise).

Both are said in the spec's descriptions. A third rule depends on the world outside the
request: a `callback_url` is refused unless its host resolves, and resolves to addresses the
service may call (no private ones, never the service itself), which no schema can state. A
request generated as valid is sent without its `callback_url` (tests/api/webhooks.rs tests
the option); one generated as invalid keeps it. And a CSV body's validity (as many fields on every
line as in its header, a header naming an identifier column, one usable value) is no regular
language, so no JSON Schema pattern can state it: a CSV case generated as valid is sent with a
fixed valid CSV and its generated query string. The CSV reader itself is fuzzed by proptest
(`crates/server/tests/input_properties.rs`) and the hostile corpus (`tests/api/hostile.rs`). This hook makes a request that the fuzzer generated
as valid follow them, so that the `positive_data_acceptance` check keeps testing everything
else about it. Requests generated as invalid are sent as generated: the server must refuse
them either way.
"""

import schemathesis
from schemathesis.generation import GenerationMode
from schemathesis.core.parameters import ParameterLocation

LOCATION = ("latitude", "longitude", "radius")
VALID_CSV = "email\nfuzz@example.com\n"


def _is_positive(case, location):
    meta = case._meta
    if meta is None:
        return False
    if meta.generation.mode != GenerationMode.POSITIVE:
        return False
    component = meta.components.get(location)
    return component is None or component.mode == GenerationMode.POSITIVE


def _query_is_positive(case):
    return _is_positive(case, ParameterLocation.QUERY)


def _drop_callback_url(case):
    if _is_positive(case, ParameterLocation.BODY) and isinstance(case.body, dict):
        options = case.body.get("options")
        if isinstance(options, dict):
            options.pop("callback_url", None)
    if _query_is_positive(case) and case.query:
        case.query.pop("callback_url", None)


@schemathesis.hook
def before_call(context, case, **kwargs):
    operation = case.operation
    if operation.method.upper() != "POST" or operation.path != "/v1/jobs":
        return
    _drop_callback_url(case)
    if not _query_is_positive(case):
        return
    media_type = (case.media_type or "application/json").split(";")[0].strip().lower()
    if media_type == "text/csv":
        case.body = VALID_CSV
    if not case.query:
        return
    if media_type != "text/csv":
        case.query = {}
        return
    present = [name for name in LOCATION if name in case.query]
    if 0 < len(present) < len(LOCATION):
        case.query = {k: v for k, v in case.query.items() if k not in LOCATION}

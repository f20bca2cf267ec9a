"""Parses an OpenMetrics text exposition from stdin with the Prometheus project's own Python
client (its strict OpenMetrics parser) and prints every sample as JSON: [name, labels, value].
A text the parser refuses exits non-zero with the parser's error."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
json.dump(samples, sys.stdout)

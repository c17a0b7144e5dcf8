"""A functions-framework hello-world CloudEvent function: the baseline for every benchmark.

Served exactly like an integration:
``functions-framework --source benchmarks/hello/main.py --target handle --signature-type cloudevent``.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    print(f"Hello, {cloud_event['type']} from {cloud_event['source']}")

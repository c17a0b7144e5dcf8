"""HTTP fuzzing: 10,000 malformed or random events against the GitHub function as served.

The rule: never a 5xx for bad input, never a crash, never an external call made from a
malformed event. Events are seeded mutations of Tekton's own shapes (which reach deeper than
random bytes), plus random headers and bodies.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from common import samples
from common.errors import MalformedEventError
from common.events import parse_event
from common.runclient import MemoryRunClient
from common.standins.github import GitHubStandIn
from tests.conftest import add_run, function_client

EVENTS = 10_000
SEED = 20261124
JUNK: list[Any] = [
    None,
    "",
    "x" * 300,
    -1,
    2**70,
    1.5,
    True,
    [],
    {},
    [1, "a"],
    {"a": {"b": None}},
    "\u0000\ud7ff",
]
CE_HEADERS = ["ce-specversion", "ce-type", "ce-source", "ce-id", "ce-time", "content-type"]


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [p for key, item in value.items() for p in leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [path] + [p for index, item in enumerate(value) for p in leaf_paths(item, (*path, index))]
    return [path]


def mutate(rng: random.Random, sample: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    event = copy.deepcopy(sample)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        paths = [p for p in leaf_paths(event["data"]) if p]
        if choice < 0.5 and paths:
            path = rng.choice(paths)
            parent = event["data"]
            for key in path[:-1]:
                parent = parent[key]
            if rng.random() < 0.3:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(JUNK))
        elif choice < 0.8:
            header = rng.choice(CE_HEADERS)
            if rng.random() < 0.5:
                event["headers"].pop(header, None)
            else:
                event["headers"][header] = rng.choice(
                    [
                        "",
                        "dev.tekton.event.pipelinerun.running.v1",
                        "dev.tekton.event.taskrun.bogus.v1",
                        "1.0",
                        "0.3",
                        "application/cloudevents+json",
                        "text/plain",
                        "x" * 500,
                    ]
                )
        else:
            event["data"] = rng.choice(
                [
                    *JUNK,
                    {"pipelineRun": copy.deepcopy(rng.choice(JUNK))},
                    {"taskRun": {"metadata": copy.deepcopy(rng.choice(JUNK))}},
                ]
            )
    body = json.dumps(event["data"]).encode()
    if rng.random() < 0.1:
        cut = rng.randint(0, len(body))
        body = body[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
    return event["headers"], body


def random_request(rng: random.Random) -> tuple[dict[str, str], bytes]:
    headers = {
        h: "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, 20)))
        for h in CE_HEADERS
        if rng.random() < 0.7
    }
    return headers, bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))


def is_malformed(headers: dict[str, str], body: bytes) -> bool:
    """Our oracle: would the runtime's own parser accept this as a Tekton event?"""
    lowered = {k.lower(): v for k, v in headers.items()}

    class Event:
        def get_attributes(self) -> dict[str, str]:
            return {k.removeprefix("ce-"): v for k, v in lowered.items() if k.startswith("ce-")}

        def get_data(self) -> bytes:
            return body

    required = {"ce-specversion", "ce-type", "ce-source", "ce-id"}
    if not required <= lowered.keys() or lowered.get("ce-specversion") not in ("1.0", "0.3"):
        return True
    try:
        parse_event(Event())
    except MalformedEventError:
        return True
    return False


def test_ten_thousand_hostile_events(kube: MemoryRunClient, github: GitHubStandIn) -> None:
    rng = random.Random(SEED)
    bases = [samples.load(name) for name in samples.names()]
    stored = set()
    for base in bases:  # the runs exist, so well-formed events reach GitHub
        _, obj = samples.run_object(base)
        if obj["metadata"]["uid"] not in stored:
            stored.add(obj["metadata"]["uid"])
            add_run(kube, base)
    client = function_client("github")
    generators: list[Callable[[], tuple[dict[str, str], bytes]]] = [
        lambda: mutate(rng, rng.choice(bases)),
        lambda: random_request(rng),
    ]
    answers: dict[int, int] = {}
    for _ in range(EVENTS):
        headers, body = rng.choices(generators, weights=[9, 1])[0]()
        calls_before = len(github.calls)
        answer = client.post("/", headers=headers, data=body)
        answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
        assert answer.status_code < 500 or answer.status_code in (503,), (
            answer.status_code,
            headers,
            body[:200],
        )
        if answer.status_code == 400:
            assert len(github.calls) == calls_before, "a refused event made an external call"
        if answer.status_code in (200, 429, 503):
            assert not is_malformed(headers, body) or headers.get("content-type", "").startswith(
                "application/cloudevents"
            ), (
                "a malformed event was accepted",
                headers,
                body[:200],
            )
    assert sum(answers.values()) == EVENTS
    assert answers.get(400, 0) > EVENTS // 2, answers

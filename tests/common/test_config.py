"""Annotation configuration: what users write, and what they are told when it is wrong."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from common.config import (
    CommaList,
    IntegrationConfig,
    RunStates,
    load_config,
    opted_in,
    settings_from_annotations,
)
from common.errors import InvalidConfigurationError
from common.events import RunPhase


class Example(IntegrationConfig):
    channel: str
    on: RunStates = frozenset({RunPhase.FAILED})
    to: CommaList = Field(default_factory=list)


def test_only_the_integrations_own_keys_are_configuration() -> None:
    annotations = {
        "example.integrations.tekton.dev/channel": " #ci ",
        "example.integrations.tekton.dev/status": "{}",
        "other.integrations.tekton.dev/channel": "#elsewhere",
        "tekton.dev/pipeline": "build",
    }
    assert settings_from_annotations("example", annotations) == {"channel": " #ci "}
    assert load_config(Example, "example", annotations).channel == "#ci"
    assert opted_in("example", annotations)
    assert not opted_in("example", {"example.integrations.tekton.dev/status": "{}"})


def test_states_lists_and_their_words() -> None:
    config = load_config(
        Example,
        "example",
        {
            "example.integrations.tekton.dev/channel": "#ci",
            "example.integrations.tekton.dev/on": "Started, succeeded,",
            "example.integrations.tekton.dev/to": "a@example.com, b@example.com",
        },
    )
    assert config.on == {RunPhase.RUNNING, RunPhase.SUCCEEDED}
    assert config.to == ["a@example.com", "b@example.com"]
    failed = load_config(
        Example,
        "example",
        {"example.integrations.tekton.dev/channel": "#ci", "example.integrations.tekton.dev/on": "failed"},
    )
    assert failed.on == {RunPhase.FAILED, RunPhase.CANCELLED, RunPhase.TIMED_OUT}


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({}, "example.integrations.tekton.dev/channel: required annotation is missing"),
        ({"chanel": "#ci"}, "example.integrations.tekton.dev/chanel: unknown key"),
        (
            {"channel": "#ci", "on": "sometimes"},
            "example.integrations.tekton.dev/on: unknown state 'sometimes'",
        ),
        ({"channel": "#ci", "on": " , "}, "name at least one state"),
    ],
)
def test_bad_annotations_name_the_key_and_the_problem(annotations: dict[str, str], message: str) -> None:
    prefixed = {f"example.integrations.tekton.dev/{key}": value for key, value in annotations.items()}
    with pytest.raises(InvalidConfigurationError) as raised:
        load_config(Example, "example", prefixed)
    assert message in raised.value.message
    assert raised.value.reason == "InvalidConfiguration"


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=8))
def test_any_annotations_give_a_config_or_a_clear_error(annotations: dict[str, str]) -> None:
    prefixed = {f"example.integrations.tekton.dev/{key}": value for key, value in annotations.items()}
    try:
        load_config(Example, "example", prefixed)
    except InvalidConfigurationError as e:
        problem = e.message
    else:
        return
    assert problem.startswith("example.integrations.tekton.dev/")


class Pinned(IntegrationConfig):
    sha: str = Field(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$")
    mode: Literal["check-run", "status"] = "check-run"


def test_a_pattern_mismatch_is_told_in_words_never_as_the_regular_expression() -> None:
    """Issue 13: the runtime records this message and writes it to the Event; explain shows it too."""
    with pytest.raises(InvalidConfigurationError) as raised:
        load_config(Pinned, "example", {"example.integrations.tekton.dev/sha": "main"})
    message = raised.value.message
    assert message == (
        "example.integrations.tekton.dev/sha: 'main' does not have the expected form: use the full "
        "commit SHA: 40 (or 64) lower-case hex digits, not a branch or short SHA"
    )
    assert "pattern" not in message
    assert "^(" not in message


def test_each_problem_names_the_key_the_value_and_the_fix() -> None:
    annotations = {
        "example.integrations.tekton.dev/sha": "9f1c2e7",
        "example.integrations.tekton.dev/mode": "checkrun",
        "example.integrations.tekton.dev/shaa": "x",
    }
    with pytest.raises(InvalidConfigurationError) as raised:
        load_config(Pinned, "example", annotations)
    problems = raised.value.message.split("; ")
    assert problems[0].startswith("example.integrations.tekton.dev/sha: '9f1c2e7' does not have")
    assert problems[1] == (
        "example.integrations.tekton.dev/mode: 'checkrun' is not one of the allowed values: "
        "use one of 'check-run' or 'status'"
    )
    assert problems[2] == (
        "example.integrations.tekton.dev/shaa: unknown key: rename it to "
        "example.integrations.tekton.dev/sha (known keys: sha, mode)"
    )


def test_the_cli_and_the_runtime_share_the_words() -> None:
    from pydantic import ValidationError

    from common.config import problems_of

    annotations = {"example.integrations.tekton.dev/sha": "main"}
    try:
        Pinned.model_validate({"sha": "main"})
    except ValidationError as e:
        (problem,) = problems_of(Pinned, "example", annotations, e)
    with pytest.raises(InvalidConfigurationError) as raised:
        load_config(Pinned, "example", annotations)
    assert raised.value.message == problem.text

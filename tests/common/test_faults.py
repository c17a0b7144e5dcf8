"""The one fault table: statuses, transport failures and rate-limit headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from common.errors import PermanentError, TemporaryError
from common.faults import MAX_RETRY_AFTER, Faults, retry_after

PAGER = Faults("Pager", {404: "no such service: check pager.integrations.tekton.dev/service"})


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        (500, TemporaryError, "PagerUnavailable"),
        (502, TemporaryError, "PagerUnavailable"),
        (408, TemporaryError, "PagerUnavailable"),
        (429, TemporaryError, "PagerRateLimited"),
        (401, PermanentError, "PagerUnauthorized"),
        (403, PermanentError, "PagerForbidden"),
        (404, PermanentError, "PagerNotFound"),
        (422, PermanentError, "PagerRejected"),
        (301, PermanentError, "PagerRedirected"),
    ],
)
def test_statuses_map_to_retry_or_record(status: int, kind: type[Exception], reason: str) -> None:
    error = PAGER.for_status(status, {}, what="open an incident")
    assert type(error) is kind
    assert error.reason == reason
    assert "open an incident" in error.message


def test_a_permanent_error_carries_the_hint_and_the_services_words() -> None:
    error = PAGER.for_status(404, {}, what="open an incident", detail="Not Found\n  (service 7)")
    assert error.message == (
        "open an incident: 404 no such service: check pager.integrations.tekton.dev/service "
        "(Not Found (service 7))"
    )


def test_a_service_that_echoes_a_credential_does_not_get_it_into_the_message() -> None:
    error = PAGER.for_status(
        500, {}, what="open", detail="bad header Authorization: Bearer ghp_0123456789abcdefghij"
    )
    assert "ghp_" not in error.message


def test_rate_limit_waits_come_from_the_headers_within_one_cap() -> None:
    now = 1_700_000_000.0
    assert retry_after({"retry-after": "7"}, now=now) == 7
    date = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 90)}
    assert retry_after(reset, rate_limit=True, now=now) == 90
    assert retry_after(reset, now=now) is None, "a reset time says nothing outside a rate limit"
    assert (
        retry_after(
            {"x-ratelimit-remaining": "12", "x-ratelimit-reset": str(int(now) + 900)},
            rate_limit=True,
            now=now,
        )
        is None
    )
    assert retry_after({"ratelimit-remaining": "0", "ratelimit-reset": "40"}, rate_limit=True, now=now) == 40
    assert retry_after({"retry-after": "999999"}, now=now) == MAX_RETRY_AFTER
    assert retry_after({"retry-after": "0"}, now=now) == 1


def test_a_rate_limit_without_a_wait_asks_for_a_minute() -> None:
    error = PAGER.for_status(403, {}, what="open", rate_limited=True)
    assert isinstance(error, TemporaryError)
    assert error.retry_after == 60


def test_transport_failures_are_temporary_and_name_no_address() -> None:
    assert PAGER.unreachable("open", ConnectionRefusedError(111, "refused")).reason == "PagerUnreachable"
    timeout = PAGER.unreachable("open", TimeoutError())
    assert timeout.reason == "PagerTimeout"
    assert PAGER.timeout("open", 3).message == "Pager did not answer open within 3s"

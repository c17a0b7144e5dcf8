"""The redaction boundary masks every credential the process holds and well-known token shapes."""

from __future__ import annotations

import base64

import pytest

from common.redaction import MASK, redact, remember


@pytest.mark.parametrize(
    "token",
    [
        "ghp_0123456789abcdefghijABCDEFGHIJ",
        "ghs_0123456789abcdefghijABCDEFGHIJ",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-1234567890-0987654321-abcdefABCDEF",
        "glpat-abcdefghij0123456789",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NTYifQ.c2lnbmF0dXJl",
        "Bearer 0123456789abcdefABCDEF",
        "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
    ],
)
def test_well_known_token_shapes_are_masked(token: str) -> None:
    masked = redact(f"the proxy said: Authorization: {token} (rejected)")
    assert token not in masked
    assert MASK in masked
    assert masked.startswith("the proxy said:")


def test_a_private_key_block_is_masked_whole() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----"
    assert redact(f"key: {pem} end") == f"key: {MASK} end"


def test_a_remembered_secret_is_masked_in_the_forms_it_travels_in() -> None:
    remember("s3cret-relay-password", user="ci-bot")
    plain = base64.b64encode(b"\0ci-bot\0s3cret-relay-password").decode()
    basic = base64.b64encode(b"ci-bot:s3cret-relay-password").decode()
    text = f"535 auth failed for s3cret-relay-password / {plain} / Basic {basic} / s3cret%2Drelay"
    masked = redact(text)
    for secret in ("s3cret-relay-password", plain, basic):
        assert secret not in masked


def test_ordinary_text_is_left_alone() -> None:
    text = (
        "Slack rejected the bot token (invalid_auth): check SLACK_BOT_TOKEN or the file "
        "SLACK_BOT_TOKEN_FILE names; the token configuration page; true; 443"
    )
    remember("true")
    assert redact(text) == text

"""The redaction boundary masks every credential the process holds and well-known token shapes."""

from __future__ import annotations

import base64

import pytest

from common.redaction import MASK, redact, redact_lines, remember


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


@pytest.mark.parametrize(
    "token",
    [
        "gho_0123456789abcdefghijABCDEFGHIJ",
        "ghu_0123456789abcdefghijABCDEFGHIJ",
        "ghr_0123456789abcdefghijABCDEFGHIJ",
        "xoxp-1234567890-0987654321-abcdefABCDEF",
        "xoxa-2-1234567890-abcdefABCDEF",
        "ASIAIOSFODNN7EXAMPLE",
    ],
)
def test_more_token_shapes_are_masked(token: str) -> None:
    assert redact(f"echo {token} | login") == f"echo {MASK} | login"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            f"aws_secret_access_key = {MASK}",
        ),
        (
            'AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" aws s3 cp',
            f'AWS_SECRET_ACCESS_KEY="{MASK}" aws s3 cp',
        ),
        (
            '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
            f'{{"SecretAccessKey": "{MASK}"}}',
        ),
        ("curl -H 'Authorization: Bearer abcdefghijklmnop' x", f"curl -H 'Authorization: {MASK}' x"),
        ("authorization=token s3cr3tvalue", f"authorization={MASK}"),
    ],
)
def test_a_secret_is_masked_by_the_name_before_it(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nabc=\n"
        "-----END PRIVATE KEY-----\nnext",
        "key:\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nabc=\n-----END PRIVATE KEY-----\nnext",  # its start cut off
        "key:\n-----BEGIN EC PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",  # its end cut off
    ],
)
def test_a_private_key_is_masked_whole_whatever_part_of_it_a_text_holds(text: str) -> None:
    masked = redact(text)
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in masked
    assert masked.startswith(f"key:\n{MASK}")
    assert "abc=" not in masked


def test_a_private_key_remembered_as_a_secret_leaves_other_keys_masked_whole() -> None:
    """A remembered key's armor lines are every key's: remembering them would hide another key's
    block from the shapes, and its body would show (a GitHub App's key, then a step's log)."""
    remember(
        "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7\n"
        "-----END PRIVATE KEY-----"
    )
    other = (
        "log:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nabc=\n"
        "-----END PRIVATE KEY-----\nok"
    )
    assert redact(other) == f"log:\n{MASK}\nok"


def test_log_lines_lose_terminal_escapes_and_lines_of_a_keys_body() -> None:
    body = "MIIEowIBAAKCAQEAx4ThZzF8jU2Vq3Lr0nq7Y9Qp2yH1bWm3Gx5Jt8Uv6Ci0Ls9D"
    assert redact_lines(
        ["\x1b[1;31mFAIL\x1b[0m: \x1b]0;title\x07done", "1%\r99%\r100%", body, "\x00bell\x07"]
    ) == [
        "FAIL: done",
        "100%",
        MASK,
        "bell",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "check run 23456789012 for 4e8a1d0c7b2f93e6a5d41c08b7f2e3a9d6c1b0f5",
        "id 5b0c7b7e-3f2a-4c39-9f61-2d8e1a4b6c90, Message-ID <5b0c7b7e-3f2a-4c39-9f61-2d8e1a4b6c90@ci.eg>",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Authorization failed: the token was refused",
        "https://github.com/acme/widgets/actions/runs/123?check_suite_focus=true",
        "BUILD SUCCESSFUL\nDONE\n-----END CERTIFICATE-----",
    ],
)
def test_ids_digests_and_words_are_not_taken_for_secrets(text: str) -> None:
    assert redact(text) == text
    assert redact_lines(text.split("\n")) == text.split("\n")

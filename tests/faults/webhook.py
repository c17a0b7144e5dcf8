"""The webhook function in the fault matrix: a loopback receiver behind a resolved name."""

from __future__ import annotations

from contextlib import ExitStack

from tests.support.faults import TARGET_FAULTS, Target, rows


class Webhook(Target):
    name = "webhook"
    id_header = "x-tekton-integrations-delivery"
    url_key = "url"

    def start(self, stack: ExitStack) -> None:
        secrets = self.tmp_path / "webhook-secrets"
        secrets.mkdir()
        (secrets / "default").write_bytes(self.SIGNING_KEY.encode())
        self.monkeypatch.setenv("WEBHOOK_SECRET_DIR", str(secrets))
        super().start(stack)

    SIGNING_KEY = "fault-matrix-signing-secret"

    def credentials(self) -> list[str]:
        return [self.SIGNING_KEY]


SERVICE = Webhook
ROWS = rows("webhook", TARGET_FAULTS)

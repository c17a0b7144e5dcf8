"""The single-Service target: every installed integration, for each event, with one read of the run.

``functions-framework --source common/all.py --target handle``: what ``common.single`` serves
(``TI_INTEGRATIONS`` may narrow it to some installed integrations). An integration that does not
load stops the function at startup with the reason, as a broken ``main.py`` stops its own.
"""

from __future__ import annotations

from common.single import selected, serve_all

handle = serve_all(selected())

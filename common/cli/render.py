"""``tekton-integrations render [--template NAME] RUN``: the message a function would send for a run.

Like Argo's ``template notify``: for each integration the run opts into whose messages an
operator's template may write (its configuration is ``common.config.Templated``), or the one
``--integration`` names, it builds the ``Context`` as the function does (the live run, its
configuration, the integration's record, its child TaskRuns and, for ``log-lines``, the failed
steps' logs, read from the cluster) and calls the integration's message builder: the function
``message(ctx)`` of its module, which its ``report`` calls too. Nothing is sent.

Templates are read from ``--templates-dir`` (default ``$TI_TEMPLATES_DIR``, else the functions'
mount point), so a template can be tried before its ConfigMap is applied. The namespace policy's
``templates`` is applied as the functions apply it (``$TI_POLICY_FILE``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import templates
from common.children import read_children
from common.cli import integrations
from common.cli.errors import CliError, ExitCode
from common.cli.options import Takes, add_to
from common.cli.output import dump
from common.cli.records import views_of
from common.cli.runs import RUN_FORMS, find_run
from common.cli.session import Session
from common.config import Templated, annotation_key, load_config, opted_in
from common.errors import InvalidConfigurationError
from common.events import Run
from common.integration import Context, Integration
from common.runclient import ClusterAccess
from common.settings import RuntimeSettings

TAKES = Takes(cluster=True, outputs=("text", "json", "yaml"))
DESCRIPTION = """\
Print the message a function would send for a run, written by an operator's template (or the
default message), without sending anything: the way to try a template.

For each integration the run opts into whose messages a template may write (slack, teams,
googlechat, email, github), or only --integration NAME: the run's own template, or --template
NAME instead. The message is built by the same code as the function's, from the run as the
cluster has it now (its child TaskRuns and, with log-lines, the failed steps' logs too).

Templates are read from --templates-dir (default $TI_TEMPLATES_DIR, else
/etc/tekton-integrations/templates): the files of the ConfigMap tekton-integrations-templates,
NAME.TARGET.j2 or NAME.j2 (docs/templates.md).

-o text prints the message's main text (a header per integration when there are several);
-o json and -o yaml also print what the service would receive.

Examples:
  tekton-integrations render --template short build-and-test-run-q4m9z -n ci
  tekton-integrations render --template short --integration slack pr/build-1 --templates-dir ./templates
  tekton-integrations render pr/build-1 -o json

Exit code 1 when a template could not be used (the default message, which the function would
send instead, is printed, and the reason is on stderr).
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "render",
        help="print the message a template makes for a run, without sending it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_name", metavar="RUN", help=RUN_FORMS)
    parser.add_argument("--template", metavar="NAME", help="the template to use (default: the run's own)")
    parser.add_argument("--integration", metavar="NAME", help="only this integration (default: each one)")
    parser.add_argument(
        "--templates-dir",
        metavar="PATH",
        help=f"where the template files are (default ${templates.TEMPLATES_DIR_ENV}, "
        f"else {templates.DEFAULT_TEMPLATES_DIR})",
    )
    add_to(parser, TAKES)
    parser.set_defaults(run=run, takes_session=True)


Builder = Callable[[Context[Any, Any]], templates.Message]


def run(session: Session) -> int:
    args = session.args
    found = find_run(session.cluster, session.namespace, args.run_name)
    chosen = _integrations(found, args.integration)
    directory = Path(
        args.templates_dir or session.env.get(templates.TEMPLATES_DIR_ENV) or templates.DEFAULT_TEMPLATES_DIR
    )
    with templates.reading_from(directory):
        messages = [_render(session, found, integration, builder) for integration, builder in chosen]
    fell_back = [item for item in messages if item["fallbackReason"]]
    for item in fell_back:
        session.warning(f"{item['integration']}: {item['note']}")
    if args.output != "text":
        report = {
            "run": {"kind": found.kind, "namespace": found.namespace, "name": found.name},
            "templatesDir": str(directory),
            "messages": messages,
        }
        session.print(dump(report, args.output))
    elif len(messages) == 1:
        session.print(messages[0]["text"])
    else:
        for index, item in enumerate(messages):
            template = f" (template {item['template']!r})" if item["template"] else " (default message)"
            session.print(("\n" if index else "") + session.style.bold(item["integration"] + template))
            session.print(item["text"])
    return ExitCode.ERROR if fell_back else ExitCode.OK


def _integrations(found: Run, only: str | None) -> list[tuple[Integration[Any, Any], Builder]]:
    """The integrations to render for: the one named, or each the run opts into that can."""
    names = [only] if only else integrations.names_on(found.annotations, configured_only=True)
    chosen: list[tuple[Integration[Any, Any], Builder]] = []
    for name in names:
        loaded = integrations.load(name)
        if loaded.integration is None:
            if only:
                raise CliError(loaded.problem or f"no integration named {name!r}", ExitCode.USAGE)
            continue
        builder = _builder(loaded.integration)
        if builder is None:
            if only:
                raise CliError(f"{name}'s messages are not written by templates", ExitCode.USAGE)
            continue
        if only and not opted_in(name, found.annotations):
            raise CliError(
                f"the run does not opt into {name}: it carries no {name} annotations", ExitCode.USAGE
            )
        chosen.append((loaded.integration, builder))
    if not chosen:
        raise CliError(
            "the run opts into no integration whose messages templates write",
            hint="templates write the messages of slack, teams, googlechat, email and github "
            "(docs/templates.md); name one with --integration",
        )
    return chosen


def _builder(integration: Integration[Any, Any]) -> Builder | None:
    """The message builder a ``Templated`` integration declares."""
    if not issubclass(integration.config, Templated):
        return None
    return integration.message


def _render(
    session: Session, found: Run, integration: Integration[Any, Any], builder: Builder
) -> dict[str, Any]:
    name = integration.name
    annotations = dict(found.annotations)
    if session.args.template:
        annotations[annotation_key(name, "template")] = session.args.template
    try:
        config = load_config(integration.config, name, annotations)
    except InvalidConfigurationError as e:
        code = ExitCode.USAGE if session.args.template and "/template:" in e.message else ExitCode.ERROR
        raise CliError(f"{name}: {e.message}", code) from e
    cluster = session.cluster
    (view,) = views_of(cluster, found, only=name)
    ctx = integration.offline_context(
        found,
        config,
        view.record,
        RuntimeSettings.from_env(),
        cluster=cluster if isinstance(cluster, ClusterAccess) else None,
        load_children=lambda parent: read_children(cluster, parent),
    )
    built = builder(ctx)
    return {
        "integration": name,
        "template": getattr(config, "template", None),
        "fallbackReason": built.rendered.fallback_reason,
        "note": built.rendered.note,
        "text": built.rendered.text,
        "payload": built.payload,
    }

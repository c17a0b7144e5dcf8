"""The options every command spells as ``kubectl`` does, accepted before or after the command name.

Owns their definitions and checking: ``-v``, ``--kubeconfig``, ``--context``, ``--as``,
``--as-group``, ``-n``, ``-A``, ``-l``, ``-o``, ``--no-headers``, ``-w`` and ``--watch-timeout``.
Each command says which it takes (``Takes``). The top-level parser accepts all of them, so that
``tekton-integrations -n ci status`` and ``tekton-integrations status -n ci`` are the same; one
given to a command that does not take it is a usage error naming the command.

Both parsers leave an option that was not given out of the namespace (``SUPPRESS``), so a value
given before the command is not overwritten by the command parser's default; ``resolve`` fills in
the defaults afterwards.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_argument(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1h30m``."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use e.g. 30m, 2h, 7d or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def seconds_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and 3600")
    return value


@dataclass(frozen=True)
class Takes:
    """Which shared options a command takes."""

    cluster: bool = False
    """``--kubeconfig``, ``--context``, ``--as``, ``--as-group`` and ``-n``."""
    all_namespaces: bool = False
    selector: bool = False
    outputs: tuple[str, ...] = ()
    """The ``-o`` formats; the first is the default."""
    headers: bool = False
    """``--no-headers``: the output has a table."""
    watch: bool = False


@dataclass(frozen=True)
class _Option:
    flags: tuple[str, ...]
    dest: str
    taken: Callable[[Takes], bool]
    default: Any
    kwargs: dict[str, Any]


_OPTIONS = (
    _Option(
        ("-v", "--verbose"),
        "verbose",
        lambda t: True,
        False,
        {"action": "store_true", "help": "show what the runtime logs, on stderr"},
    ),
    _Option(
        ("--kubeconfig",),
        "kubeconfig",
        lambda t: t.cluster,
        None,
        {"metavar": "PATH", "help": "the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"},
    ),
    _Option(
        ("--context",),
        "context",
        lambda t: t.cluster,
        None,
        {"metavar": "NAME", "help": "the kubeconfig context (default: the current one)"},
    ),
    _Option(
        ("--as",),
        "as_user",
        lambda t: t.cluster,
        None,
        {"metavar": "USER", "help": "act as this user or service account (impersonation, as kubectl --as)"},
    ),
    _Option(
        ("--as-group",),
        "as_groups",
        lambda t: t.cluster,
        None,
        {"metavar": "GROUP", "action": "append", "help": "with --as: act as a member of GROUP (repeatable)"},
    ),
    _Option(
        ("-n", "--namespace"),
        "namespace",
        lambda t: t.cluster,
        None,
        {"metavar": "NAMESPACE", "help": "the namespace (default: the kubeconfig context's)"},
    ),
    _Option(
        ("-A", "--all-namespaces"),
        "all_namespaces",
        lambda t: t.all_namespaces,
        False,
        {"action": "store_true", "help": "every namespace"},
    ),
    _Option(
        ("-l", "--selector"),
        "selector",
        lambda t: t.selector,
        None,
        {"metavar": "SELECTOR", "help": "label selector, as in kubectl (app=x,tier!=y)"},
    ),
    _Option(
        ("-o", "--output"),
        "output",
        lambda t: bool(t.outputs),
        None,
        {"metavar": "FORMAT", "help": "output format"},
    ),
    _Option(
        ("--no-headers",),
        "no_headers",
        lambda t: t.headers,
        False,
        {"action": "store_true", "help": "print tables without their header line"},
    ),
    _Option(
        ("-w", "--watch"),
        "watch",
        lambda t: t.watch,
        False,
        {"action": "store_true", "help": "after listing, print each change until interrupted"},
    ),
    _Option(
        ("--watch-timeout",),
        "watch_timeout",
        lambda t: t.watch,
        None,
        {
            "metavar": "DURATION",
            "type": duration_argument,
            "help": "with -w: stop after DURATION (30s, 5m, ...)",
        },
    ),
    _Option(
        ("--watch-interval",),
        "watch_interval",
        lambda t: t.watch,
        2.0,
        {"metavar": "SECONDS", "type": seconds_argument, "help": "with -w: seconds between polls (2)"},
    ),
)


def add_global(parser: argparse.ArgumentParser) -> None:
    """Every shared option, on the top-level parser (before the command name)."""
    group = parser.add_argument_group("global options (also accepted after the command)")
    for option in _OPTIONS:
        group.add_argument(*option.flags, dest=option.dest, default=argparse.SUPPRESS, **option.kwargs)


def add_to(parser: argparse.ArgumentParser, takes: Takes) -> None:
    """The shared options a command takes, on its parser."""
    group = parser.add_argument_group("options shared with kubectl (also accepted before the command)")
    for option in _OPTIONS:
        if not option.taken(takes):
            continue
        kwargs = dict(option.kwargs)
        if option.dest == "output":
            kwargs["help"] = f"output format: {', '.join(takes.outputs)} (default {takes.outputs[0]})"
            kwargs["metavar"] = "{" + ",".join(takes.outputs) + "}"
        group.add_argument(*option.flags, dest=option.dest, default=argparse.SUPPRESS, **kwargs)
    parser.set_defaults(takes=takes)


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a shared option the command does not take; fill in the defaults of those it does."""
    takes: Takes = getattr(args, "takes", Takes())
    command = getattr(args, "command", None) or "tekton-integrations"
    for option in _OPTIONS:
        given = hasattr(args, option.dest)
        if given and not option.taken(takes):
            if getattr(args, option.dest) in (option.default, []):
                continue
            parser.error(f"{'/'.join(option.flags)} does not apply to `{command}`")
        if not given:
            setattr(args, option.dest, option.default)
    if takes.outputs:
        if args.output is None:
            args.output = takes.outputs[0]
        elif args.output not in takes.outputs:
            parser.error(f"`{command}` has no output {args.output!r}: use one of {', '.join(takes.outputs)}")
    if args.as_groups and not args.as_user:
        parser.error("--as-group needs --as: Kubernetes impersonates groups only together with a user")
    if args.watch_timeout is not None and not args.watch:
        parser.error("--watch-timeout needs -w/--watch")

"""``tekton-integrations completion bash|zsh|fish``: shell completion, generated from the parser.

Owns reading the argparse parser (commands, their options, which options take a value and the
values they accept) and writing it as a completion script for each shell. Nothing is listed by
hand, so a new command or option completes as soon as it is added. Static: run names are not
looked up on the cluster.

No dependency: ``shtab`` writes bash and zsh but not fish, and ``argcomplete`` runs Python on
every Tab press.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

from common.cli.options import Takes, add_to

PROG = "tekton-integrations"
SHELLS = ("bash", "zsh", "fish")
FILE_DESTS = frozenset({"kubeconfig", "file", "policy", "write", "templates_dir"})
"""Options whose value is a path: completed with file names."""

DESCRIPTION = """\
Print a shell completion script for tekton-integrations.

Load it in the current shell:
  bash:  source <(tekton-integrations completion bash)
  zsh:   source <(tekton-integrations completion zsh)     (after compinit)
  fish:  tekton-integrations completion fish | source

Or install it for every new shell:
  bash:  tekton-integrations completion bash > /etc/bash_completion.d/tekton-integrations
  zsh:   tekton-integrations completion zsh > "${fpath[1]}/_tekton-integrations"
  fish:  tekton-integrations completion fish > ~/.config/fish/completions/tekton-integrations.fish
"""


@dataclass(frozen=True)
class Flag:
    """One option: its spellings, whether it takes a value, and which values, if listed."""

    names: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()
    path: bool = False


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    flags: tuple[Flag, ...]
    positional_choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """What completes: the top-level options and each command."""

    flags: tuple[Flag, ...]
    commands: tuple[Command, ...] = field(default_factory=tuple)


def spec_of(parser: argparse.ArgumentParser) -> Spec:
    """Read the parser: its options, and each sub-command's."""
    commands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                positional = next(
                    (a for a in sub._actions if not a.option_strings and a.choices is not None), None
                )
                commands.append(
                    Command(
                        name,
                        helps.get(name, ""),
                        _flags(sub),
                        tuple(str(c) for c in positional.choices or ()) if positional else (),
                    )
                )
    return Spec(_flags(parser), tuple(commands))


def _flags(parser: argparse.ArgumentParser) -> tuple[Flag, ...]:
    found = []
    for action in parser._actions:
        if not action.option_strings:
            continue
        takes_value = action.nargs != 0
        choices = tuple(str(c) for c in action.choices or ()) if action.choices else ()
        if action.dest == "output" and not choices and isinstance(action.metavar, str):
            choices = tuple(re.findall(r"[a-z]+", action.metavar)) if "{" in action.metavar else ()
        help_text = action.help if isinstance(action.help, str) and action.help != argparse.SUPPRESS else ""
        found.append(
            Flag(tuple(action.option_strings), help_text, takes_value, choices, action.dest in FILE_DESTS)
        )
    return tuple(found)


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    spec = spec_of(parser)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](spec)


def _words(values: tuple[str, ...] | list[str]) -> str:
    return " ".join(values)


def _bash(spec: Spec) -> str:
    names = [c.name for c in spec.commands]
    values: list[str] = []
    for command in ("", *names):
        flags = spec.flags if not command else next(c.flags for c in spec.commands if c.name == command)
        for flag in flags:
            if not flag.takes_value:
                continue
            action = (
                'COMPREPLY=($(compgen -f -- "$cur"))'
                if flag.path
                else f'COMPREPLY=($(compgen -W "{_words(flag.choices)}" -- "$cur"))'
                if flag.choices
                else "COMPREPLY=()"
            )
            patterns = "|".join(f'"{command}:{name}"' for name in flag.names)
            values.append(f"        {patterns}) {action}; return 0;;")
    flag_words = [
        f'        {command.name}) words="{_words([n for f in command.flags for n in f.names])}";;'
        for command in spec.commands
    ]
    positional = [
        f'        {command.name}) COMPREPLY=($(compgen -W "{_words(command.positional_choices)}" -- "$cur"));;'  # noqa: E501
        for command in spec.commands
        if command.positional_choices
    ]
    top_flags = _words([n for f in spec.flags for n in f.names])
    return f"""# bash completion for {PROG}; generated by `{PROG} completion bash`.
_tekton_integrations() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" cmd="" i words
    if [ "$COMP_CWORD" -gt 0 ]; then prev="${{COMP_WORDS[COMP_CWORD-1]}}"; fi
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            {"|".join(names)}) cmd="${{COMP_WORDS[i]}}"; break;;
        esac
    done
    case "$cmd:$prev" in
{chr(10).join(values)}
    esac
    if [[ "$cur" == -* ]]; then
        case "$cmd" in
{chr(10).join(flag_words)}
        *) words="{top_flags}";;
        esac
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return 0
    fi
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "{_words(names)}" -- "$cur"))
        return 0
    fi
    case "$cmd" in
{chr(10).join(positional)}
        *) COMPREPLY=();;
    esac
    return 0
}}
complete -F _tekton_integrations {PROG}
"""


def _zsh_text(text: str) -> str:
    cleaned = re.sub(r"[\[\]]", "", " ".join(text.split()))
    return cleaned.replace("'", "'\\''").replace(":", "\\:")


def _zsh_flag(flag: Flag) -> list[str]:
    lines = []
    for name in flag.names:
        spec = f"{name}[{_zsh_text(flag.help)}]"
        if flag.takes_value:
            if flag.path:
                spec += ":path:_files"
            elif flag.choices:
                spec += f":value:({' '.join(flag.choices)})"
            else:
                spec += ":value: "
        lines.append(f"'{spec}'")
    return lines


def _zsh(spec: Spec) -> str:
    commands = " ".join(f"'{c.name}:{_zsh_text(c.help)}'" for c in spec.commands)
    top = " \\\n    ".join(line for flag in spec.flags for line in _zsh_flag(flag))
    cases = []
    for command in spec.commands:
        args = [line for flag in command.flags for line in _zsh_flag(flag)]
        if command.positional_choices:
            args.append(f"'1:value:({' '.join(command.positional_choices)})'")
        joined = " \\\n        ".join(args)
        cases.append(f"      {command.name})\n        _arguments \\\n        {joined}\n        ;;")
    return f"""#compdef {PROG}
# zsh completion for {PROG}; generated by `{PROG} completion zsh`.
compdef _tekton_integrations {PROG}

_tekton_integrations() {{
  local curcontext="$curcontext" state line
  local -a commands
  commands=({commands})
  _arguments -C \\
    {top} \\
    '1:command:->command' \\
    '*::argument:->argument'
  case $state in
    command)
      _describe -t commands 'command' commands
      ;;
    argument)
      case $line[1] in
{chr(10).join(cases)}
      esac
      ;;
  esac
}}

# Run only when autoloaded from $fpath, not when sourced.
if [ "$funcstack[1]" = "_tekton_integrations" ]; then
  _tekton_integrations "$@"
fi
"""


def _fish_text(text: str) -> str:
    return " ".join(text.split()).replace("\\", "\\\\").replace("'", "\\'")


def _fish_flag(condition: str, flag: Flag) -> str:
    parts = [f"complete -c {PROG} -n '{condition}'"]
    for name in flag.names:
        parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
    if flag.takes_value:
        parts.append("-r -F" if flag.path else "-x")
        if flag.choices:
            parts.append(f"-a '{' '.join(flag.choices)}'")
    if flag.help:
        parts.append(f"-d '{_fish_text(flag.help)}'")
    return " ".join(parts)


def _fish(spec: Spec) -> str:
    names = " ".join(c.name for c in spec.commands)
    lines = [
        f"# fish completion for {PROG}; generated by `{PROG} completion fish`.",
        "function __tekton_integrations_command",
        "    for word in (commandline -opc)[2..-1]",
        f"        if contains -- $word {names}",
        "            echo $word",
        "            return 0",
        "        end",
        "    end",
        "    return 1",
        "end",
        "function __tekton_integrations_no_command",
        "    not __tekton_integrations_command >/dev/null",
        "end",
        "function __tekton_integrations_using",
        "    set -l command (__tekton_integrations_command)",
        '    test "$command" = "$argv[1]"',
        "end",
        f"complete -c {PROG} -f",
    ]
    for command in spec.commands:
        lines.append(
            f"complete -c {PROG} -n __tekton_integrations_no_command -a {command.name} "
            f"-d '{_fish_text(command.help)}'"
        )
    lines += [_fish_flag("__tekton_integrations_no_command", flag) for flag in spec.flags]
    for command in spec.commands:
        condition = f"__tekton_integrations_using {command.name}"
        lines += [_fish_flag(condition, flag) for flag in command.flags]
        if command.positional_choices:
            lines.append(
                f"complete -c {PROG} -n '{condition}' -x -a '{' '.join(command.positional_choices)}'"
            )
    return "\n".join(lines) + "\n"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    add_to(parser, Takes())
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from common.cli import build_parser  # noqa: PLC0415 -- the parser this module is part of

    print(script(args.shell, build_parser()), end="")
    return 0

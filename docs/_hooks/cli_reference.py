"""mkdocs hook: the command-line reference, generated from the click commands themselves.

The page ``cli.md`` holds the marker ``<!-- cli-reference -->``; this hook replaces it with one
section per command: usage, description, examples as a code block, and a table of the options
with their real defaults (click 8.3+ marks "no default" with a sentinel, which is never printed)
and help texts. ``train --loss`` also lists the registered losses.
"""

from __future__ import annotations

import inspect
import re

import click

MARKER = "<!-- cli-reference -->"
PROG = "st-gloss"


def _has_default(param: click.Parameter) -> bool:
    default = param.default
    return default is not None and "Sentinel" not in repr(default) and not callable(default)


def _default_text(param: click.Option) -> str:
    if param.is_flag and param.secondary_opts:  # --progress/--no-progress
        flag = param.opts[0] if param.default else param.secondary_opts[0]
        return f"`{flag}`"
    if param.is_flag:
        return "on" if _has_default(param) and param.default is True else "off"
    if not _has_default(param):
        return "(required)" if param.required else ""
    default = param.default
    if isinstance(default, (list, tuple)):
        default = ",".join(str(d) for d in default)
    return f"`{default}`"


def _names(param: click.Option) -> str:
    names = ", ".join(param.opts)
    if param.secondary_opts:
        names += " / " + ", ".join(param.secondary_opts)
    metavar = ""
    if not param.is_flag and not isinstance(param.type, click.Choice):  # choices are listed in the help
        metavar = param.make_metavar(click.Context(click.Command("x")))
    return f"`{names}`" + (f" {_escape(metavar)}" if metavar else "")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _help_and_examples(command: click.Command) -> tuple[str, list[str]]:
    """The description paragraphs and the example lines of a command's help text."""
    text = inspect.cleandoc(command.help or "")
    text = text.replace("\b\n", "")
    description, examples = [], []
    in_examples = False
    for line in text.splitlines():
        if re.match(r"^\s*Examples?:\s*$", line):
            in_examples = True
            continue
        if in_examples:
            if line.strip():
                examples.append(line.strip())
        else:
            description.append(line)
    return "\n".join(description).strip(), examples


def _loss_list() -> list[str]:
    from st_gloss.registry import LOSSES

    return [f"- `{name}`: {spec.description}" for name, spec in LOSSES.items()]


def _command_section(name: str, command: click.Command) -> list[str]:
    ctx = click.Context(command, info_name=f"{PROG} {name}")
    usage = " ".join(command.collect_usage_pieces(ctx))
    description, examples = _help_and_examples(command)
    lines = [f"## `{PROG} {name}`", "", "```text", f"{PROG} {name} {usage}", "```", ""]
    if description:
        lines += [description, ""]
    if examples:
        lines += ["**Examples**", "", "```bash", *examples, "```", ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if arguments:
        lines += ["**Arguments**", ""]
        for arg in arguments:
            lines.append(f"- `{arg.human_readable_name}`" + ("" if arg.required else " (optional)"))
        lines.append("")
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if options:
        lines += ["**Options**", "", "| option | default | what it does |", "|---|---|---|"]
        for option in options:
            help_text = _escape(" ".join((option.help or "").split()))
            if isinstance(option.type, click.Choice) and option.name != "loss":
                help_text += (" " if help_text else "") + "One of: " + ", ".join(f"`{c}`" for c in option.type.choices) + "."
            lines.append(f"| {_names(option)} | {_default_text(option)} | {help_text} |")
        lines.append("| `-h, --help` | | Show the help and exit. |")
        lines.append("")
        if any(option.name == "loss" for option in options):
            lines += ["**Losses** (`--loss`)", "", *_loss_list(), ""]
    return lines


def render() -> str:
    """The whole reference, as Markdown."""
    from st_gloss.cli import main

    lines: list[str] = []
    for name in sorted(main.commands):
        lines += _command_section(name, main.commands[name])
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())

"""Dataclass configurations as command lines: one ``--kebab-case`` flag per field, its ``#:`` comment as help.

Used by every script (``experiments/``, ``benchmarks/``), so that a script only declares its options and
reports, CleanRL-style.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import shlex
import sys
import textwrap
import time
from dataclasses import MISSING, fields
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from .utils import resolve_device, seed_everything

__all__ = ["field_help", "field_groups", "add_config_arguments", "config_parser", "parse_config", "config_from_args", "command_line",
           "ANTICIPATED", "run_script", "start_run"]

T = TypeVar("T")


def field_help(cls: type) -> dict[str, str]:
    """The ``#:`` comment after each field of a dataclass (its documentation), by field name."""
    try:
        lines = textwrap.dedent(inspect.getsource(cls)).splitlines()
    except (OSError, TypeError):  # no source (e.g. defined in a REPL)
        return {}
    out: dict[str, str] = {}
    for node in ast.parse("\n".join(lines)).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = lines[node.lineno - 1]
            if "#:" in line:
                out[node.target.id] = line.split("#:", 1)[1].strip()
    return out


def field_groups(cls: type) -> dict[str, list[str]]:
    """The fields of a dataclass under its ``# [name] description`` comment lines, as ``{"name: description":
    [field, ...]}`` in source order (fields before the first such line are left out)."""
    try:
        lines = textwrap.dedent(inspect.getsource(cls)).splitlines()
    except (OSError, TypeError):
        return {}
    names = {f.name for f in fields(cls)}
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        text = line.strip()
        if text.startswith("# [") and "]" in text:
            name, description = text[3:].split("]", 1)
            current = groups.setdefault(f"{name}: {description.strip()}" if description.strip() else name, [])
        elif current is not None and ":" in text and text.split(":", 1)[0].strip() in names:
            current.append(text.split(":", 1)[0].strip())
    return groups


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, defaults: Any = None) -> None:
    """Add one ``--flag`` per dataclass field (typed by its default; tuples take several values), under the
    argument groups of its ``# [name]`` comment lines (:func:`field_groups`) where it has them."""
    helps = field_help(cls)
    defaults = cls() if defaults is None else defaults
    group_of = {f: title for title, members in field_groups(cls).items() for f in members}
    if not isinstance(parser, argparse.ArgumentParser):  # already a group: argument groups do not nest
        group_of = {}
    groups = {title: parser.add_argument_group(title) for title in dict.fromkeys(group_of.values())}
    for f in fields(cls):
        default = getattr(defaults, f.name)
        parser_ = groups.get(group_of.get(f.name, ""), parser)
        flag = f"--{f.name.replace('_', '-')}"
        text = helps.get(f.name, "").replace("%", "%%") + f" (default: {' '.join(map(str, default)) if isinstance(default, tuple) else default!r})"
        if isinstance(default, tuple):
            parser_.add_argument(flag, type=type(default[0]), nargs="+", default=None, metavar="V", help=text)
        elif isinstance(default, bool):
            parser_.add_argument(flag, type=int, choices=(0, 1), default=None, help=text)
        else:
            parser_.add_argument(flag, type=None if default is None else type(default), default=None,
                                metavar=type(default).__name__.upper() if default is not None else None, help=text)


def config_parser(cls: type, description: str | None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` (no abbreviations, help with defaults) for the dataclass ``cls``."""
    p = argparse.ArgumentParser(description=description, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p, cls)
    return p


def config_from_args(cls: type[T], args: argparse.Namespace) -> tuple[T, set[str]]:
    """The dataclass from parsed flags, and the names of the fields given on the command line."""
    given = {f.name for f in fields(cls) if getattr(args, f.name, None) is not None}
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in given:
            v = getattr(args, f.name)
            values[f.name] = tuple(v) if isinstance(v, list) else v
        elif f.default is MISSING:
            raise ValueError(f"--{f.name.replace('_', '-')} is required")
    return cls(**values), given


def parse_config(cls: type[T], argv: list[str] | None, description: str | None) -> T:
    """Parse ``argv`` into the dataclass ``cls`` (see :func:`config_parser`)."""
    return config_from_args(cls, config_parser(cls, description).parse_args(argv))[0]


def command_line(argv: list[str] | None) -> str:
    """The command that ran (for provenance JSON)."""
    return "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])


def start_run(cls: type[T], argv: list[str] | None, description: str | None) -> tuple[T, torch.device, Path, float]:
    """Parse the config, check it (its ``validate()``, where it has one: before anything is read or written), seed
    everything, resolve ``cfg.device``, create ``cfg.out``; returns (cfg, device, out, t0).

    :raises adanat_env.inputs.InputError: a bad option.
    """
    cfg = parse_config(cls, argv, description)
    if hasattr(cfg, "validate"):
        cfg.validate()
    seed_everything(cfg.seed)  # type: ignore[attr-defined]
    out = Path(cfg.out)  # type: ignore[attr-defined]
    out.mkdir(parents=True, exist_ok=True)
    return cfg, resolve_device(cfg.device), out, time.perf_counter()  # type: ignore[attr-defined]


#: The errors a command reports as one line (anything else is a bug and keeps its traceback).
ANTICIPATED: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, FloatingPointError, ImportError)


def run_script(main: Callable[[list[str]], Any], argv: list[str] | None = None, *, continue_hint: str = "") -> None:
    """Run a command's ``main(argv)`` for the terminal: line-buffered output, the anticipated errors (bad inputs
    among them: :class:`~adanat_env.inputs.InputError`) as one line on stderr (exit 1), Ctrl-C as one line (exit
    130, with ``continue_hint``); ``--debug`` anywhere in the arguments keeps the traceback. Usage errors stay
    argparse's (exit 2).

    :param main: the command, called with the arguments less ``--debug``.
    :param continue_hint: what to say after an interruption (e.g. how to continue where it stopped).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        main(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\ninterrupted{'; ' + continue_hint if continue_hint else ''}", file=sys.stderr)
        sys.exit(130)
    except ANTICIPATED as e:
        if debug:
            raise
        print(f"error: {' '.join(str(e).split())} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(1)

"""Checks of what a user hands in, shared by every entry point, and one way for a command to report them.

Every check raises :class:`InputError`: a ``ValueError`` whose message is one line naming the input (an option,
a file, a field), what is wrong with it and the fix. The entry points (the trainer's preflight
:func:`agents.training.preflight.preflight`, the sampling CLIs, the training scripts) run them before any work,
so a bad input never costs a training step or a generation; :func:`adanat_env.config.run_script` turns them into
that line on stderr and an exit status (``--debug`` keeps the traceback).

    >>> integer("steps", 2.5)
    Traceback (most recent call last):
    ...
    adanat_env.inputs.InputError: steps must be an integer, got 2.5: pass a whole number
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["InputError", "integer", "number", "existing_file", "read_json", "writable_file", "class_coverage",
           "check_fields"]


class InputError(ValueError):
    """A bad input, found before any work; the message (one line) names the input, the problem and the fix."""


def integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, refusing what is not a whole number (``2.5``, ``"3"``, ``True``) or out of bounds.

    :param name: the input's name in the message (``"steps"``, ``"--epochs"``).
    :raises InputError: naming ``name``, the value and the valid range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and float(value).is_integer():
            value = int(value)  # 3.0 is a whole number
        else:
            raise InputError(f"{name} must be an integer, got {value!r}: pass a whole number")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise InputError(f"{name} must be {bound}, got {value}")
    return value


def number(name: str, value: Any, low: float | None = None, *, strict: bool = False) -> float:
    """``value`` as a finite float (not NaN or inf), at least ``low`` (above it with ``strict``).

    :raises InputError: naming ``name`` and the value.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (low is not None and (value <= low if strict else value < low)):
        bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
        raise InputError(f"{name} must be a finite number{bound}, got {value}")
    return value


def existing_file(name: str, path: str | os.PathLike[str], fix: str) -> Path:
    """``path`` if it is a file.

    :param fix: what to pass instead (the message's end).
    :raises InputError: it does not exist, or is a directory.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"{name} '{p}' is a directory, not a file: {fix}")
    if not p.is_file():
        raise InputError(f"{name} '{p}' does not exist: {fix}")
    return p


def read_json(path: str | os.PathLike[str], what: str, fix: str) -> Any:
    """The JSON in ``path``.

    :param what: what the file is (``"the NAT's record"``).
    :raises InputError: unreadable or not JSON, naming the file and where it breaks.
    """
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{what} '{p}' is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}): {fix}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {what} '{p}' ({e}): {fix}") from None


def writable_file(name: str, path: str | os.PathLike[str]) -> Path:
    """``path`` if a file can be written there: not a directory, its nearest existing ancestor a writable directory.

    :raises InputError: naming the path and why not.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"{name} '{p}' is a directory: pass a file path")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{name} '{p}': '{parent}' is a file, not a directory: pass a path in a directory")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{name} '{p}': cannot write in '{parent}' (permission denied): pass a path you can write")
    return p


def class_coverage(labels: np.ndarray, num_classes: int, source: str, fix: str) -> None:
    """Every class ``0 .. num_classes - 1`` has at least one image in ``labels``.

    A generator's samples are class-balanced: a reference without some classes makes FID compare unlike sets,
    and a discriminator without them has no real image of those classes.

    :param source: the data in the message (``"the train split of 'D'"``).
    :raises InputError: naming the missing classes (up to 10) and ``fix``.
    """
    present = np.unique(np.asarray(labels).reshape(-1))
    missing = np.setdiff1d(np.arange(num_classes), present)
    if missing.size:
        shown = ", ".join(map(str, missing[:10].tolist())) + (", ..." if missing.size > 10 else "")
        raise InputError(f"{source} has images of {num_classes - missing.size} of the generator's {num_classes} "
                         f"classes (none of class {shown}): {fix}")


def check_fields(config: Any, *, positive: Sequence[str] = (), nonnegative: Sequence[str] = (),
                 choices: dict[str, Sequence[Any]] | None = None) -> None:
    """The usual checks of a script's config dataclass: every int field an integer and every float field a finite
    number (``--lr nan`` is refused), ``positive`` fields >= 1 (ints) or > 0 (floats), ``nonnegative`` >= 0,
    ``choices`` closed sets. Names in messages are the ``--kebab-case`` flags.

    :raises InputError: the first bad field.
    """
    for field, value in vars(config).items():
        flag = "--" + field.replace("_", "-")
        if field in (choices or {}) and value not in choices[field]:
            raise InputError(f"{flag} must be one of {', '.join(map(str, choices[field]))}; got {value!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        if isinstance(value, numbers.Integral):
            low = 1 if field in positive else 0 if field in nonnegative else None
            integer(flag, value, low)
        else:
            number(flag, value, 0.0 if field in positive or field in nonnegative else None, strict=field in positive)

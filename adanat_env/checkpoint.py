"""Safe checkpoint reading and strict, well-explained state-dict loading.

Every checkpoint is read either with :mod:`safetensors` or with ``torch.load(..., weights_only=True)``: a pickle
that would need to import or call arbitrary code (a malicious payload, or merely an object we did not
allow-list) is refused with :class:`UnsafeCheckpointError`, and nothing in it runs. There is deliberately no
"trust me" switch that falls back to ``weights_only=False``; convert such a file once, in a process you trust,
with ``torch.save(torch.load(path, weights_only=False)["<key>"], new_path)`` or to safetensors.

A ``.safetensors`` file whose sibling ``<stem>.json`` records a ``"sha256"`` (the shipped Fashion-MNIST weights do)
is checked against it before it is read: a damaged file is refused with :class:`CheckpointIntegrityError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "CheckpointMismatchError",
    "CheckpointIntegrityError",
    "file_sha256",
    "verify_recorded_sha256",
    "read_checkpoint",
    "extract_state_dict",
    "load_state_dict_strict",
]


class CheckpointError(RuntimeError):
    """Base class of the checkpoint errors raised by this project."""


class UnsafeCheckpointError(CheckpointError):
    """The file is a pickle that needs code execution to load; it was refused and not run."""


class CheckpointMismatchError(CheckpointError):
    """The state dict does not fit the module (missing / unexpected keys or shape mismatches)."""

    def __init__(
        self,
        what: str,
        missing: Sequence[str],
        unexpected: Sequence[str],
        mismatched: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]],
        hint: str | None = None,
    ) -> None:
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)

        def fmt(items: Sequence[str], limit: int = 20) -> str:
            shown = ", ".join(items[:limit])
            return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")

        lines = [f"checkpoint does not match {what}:"]
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): {fmt(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): {fmt(self.unexpected)}")
        if self.mismatched:
            shown = [f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
            lines.append(f"  shape mismatches ({len(shown)}): {fmt(shown)}")
        lines.append("  " + (hint or f"The file is not {what}'s checkpoint for this configuration: pass the weights "
                                     "written together with that configuration."))
        super().__init__("\n".join(lines))


class CheckpointIntegrityError(CheckpointError):
    """The file's SHA-256 differs from the one recorded in its provenance JSON: it is damaged or was replaced."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB chunks.

    :param path: the file.
    :return: 64 lowercase hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_recorded_sha256(path: str | os.PathLike[str], *, what: str = "checkpoint") -> None:
    """Check ``path`` against the ``"sha256"`` recorded in its sibling ``<stem>.json``, if there is one.

    Nothing is checked when the JSON does not exist or records no ``"sha256"``.

    :param path: the weights file (e.g. ``.../nat.safetensors``, checked against ``.../nat.json``).
    :param what: a human name for error messages.
    :raises CheckpointError: the sibling JSON exists but cannot be parsed.
    :raises CheckpointIntegrityError: the hashes differ (the message names the file, both hashes and the fix).
    """
    p = Path(path)
    meta_path = p.with_suffix(".json")
    if not meta_path.is_file():
        return
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read '{meta_path}', the provenance record of {what} '{p}': {e}") from e
    expected = meta.get("sha256") if isinstance(meta, dict) else None
    if expected is None:
        return
    actual = file_sha256(p)
    if actual != str(expected).lower():
        raise CheckpointIntegrityError(
            f"{what} '{p}' is damaged or was replaced: its SHA-256 is {actual} but '{meta_path.name}' records "
            f"{expected}. Restore the file: in a git checkout 'git checkout -- {p}', in an installed package "
            "reinstall adanat-gym; for weights you trained, re-run the 'command' in "
            f"'{meta_path.name}'."
        )


def read_checkpoint(
    path: str | os.PathLike[str],
    *,
    allowed_globals: Sequence[Any] = (),
    what: str = "checkpoint",
) -> Any:
    """Read a checkpoint file safely onto the CPU.

    ``*.safetensors`` files are read with safetensors, after :func:`verify_recorded_sha256`; anything else with
    ``torch.load(weights_only=True)``.

    :param path: the file.
    :param allowed_globals: extra classes the restricted unpickler may construct (for example
        ``argparse.Namespace`` for the official policy checkpoints); nothing else is allowed.
    :param what: a human name for error messages ("NAT checkpoint", ...).
    :return: the loaded object (a dict of tensors for safetensors).
    :raises FileNotFoundError: the file does not exist (the message names it).
    :raises UnsafeCheckpointError: the pickle needs globals that are not allow-listed; nothing ran.
    :raises CheckpointIntegrityError: the file does not match the SHA-256 recorded beside it.
    :raises CheckpointError: the file is corrupt or truncated (the message names it).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: '{p}'. Pass the path of an existing file.")
    if p.suffix == ".safetensors":
        verify_recorded_sha256(p, what=what)
        try:
            return load_file(str(p), device="cpu")
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"could not read {what} '{p}': {e}. Is the file complete (not truncated)?") from e
    try:
        if allowed_globals:
            with torch.serialization.safe_globals(list(allowed_globals)):
                return torch.load(p, map_location="cpu", weights_only=True)
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        detail = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln or "global" in ln), "")
        if not detail:  # not a code-carrying pickle, just bytes the restricted unpickler cannot parse
            raise CheckpointError(
                f"could not read {what} '{p}': it is not a valid torch or safetensors file (corrupt or truncated?)"
            ) from None
        raise UnsafeCheckpointError(
            f"refused to load {what} '{p}': it is a pickle that needs code outside the tensor allow-list "
            f"({detail}), so loading it could run arbitrary code. Nothing in it was executed.\n"
            "If you trust the file, convert it once in a trusted process, e.g. "
            "torch.save(torch.load(path, weights_only=False)['state_dict'], 'clean.pth'), or to safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"could not read {what} '{p}': {e}. Is the file complete and a torch/safetensors file?") from e


def extract_state_dict(obj: Any, *, keys: Sequence[str] = ("state_dict",), what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Return the flat ``name -> tensor`` mapping inside a loaded checkpoint.

    A top-level dict holding one of ``keys`` (e.g. ``"state_dict"``, as in the VQGAN release) is unwrapped;
    ``position_ids`` buffers of older code versions are dropped, and a ``module.`` prefix on *every* key
    (DistributedDataParallel) is stripped.
    """
    if isinstance(obj, Mapping):
        for k in keys:
            if k in obj and isinstance(obj[k], Mapping):
                obj = obj[k]
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{what} holds a {type(obj).__name__}, expected a state dict (a mapping of tensors)")
    sd = {str(k): v for k, v in obj.items() if "position_ids" not in str(k)}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{what} is not a plain state dict: non-tensor entries {bad[:10]}")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, what: str = "the model",
                           hint: str | None = None) -> None:
    """Load ``state_dict`` into ``module`` strictly, checking everything first.

    The module is left untouched when anything mismatches.

    :param hint: the fix a mismatch message ends with (default: pass the weights of this configuration).

    :raises CheckpointMismatchError: listing missing keys, unexpected keys and shape mismatches.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [
        (k, tuple(state_dict[k].shape), tuple(own[k].shape))
        for k in sorted(set(own) & set(state_dict))
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(what, missing, unexpected, mismatched, hint)
    nonfinite = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise CheckpointError(f"checkpoint for {what} has NaN/inf values in {nonfinite[:10]}; the file is corrupt")
    module.load_state_dict(state_dict, strict=True)

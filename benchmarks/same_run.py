"""Whether two training runs gave the same result: every field of ``metrics.json`` but the wall-clock times and
the command, ``history.json`` but each iteration's ``time_s``, and the final policy and discriminator weights
(``torch.equal``). Used to show that a refactor changes nothing (docs/results.md, "The default main job").

    python benchmarks/same_run.py RUN_A RUN_B      # exit 0 and "IDENTICAL", or 1 and what differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from agents.training import load_checkpoint

#: wall-clock seconds, which no two runs share
TIMES = ("wall_time_s", "generate_s", "eval_s", "time_s")


def _metrics(run: Path) -> dict[str, Any]:
    m = {k: v for k, v in json.loads((run / "metrics.json").read_text()).items() if k not in TIMES + ("command",)}
    m["details"] = {n: {k: v for k, v in d.items() if k not in TIMES} for n, d in m["details"].items()}
    return m


def _history(run: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMES} for r in json.loads((run / "history.json").read_text())]


def _same(a: dict[str, torch.Tensor] | None, b: dict[str, torch.Tensor] | None) -> bool:
    if a is None or b is None:
        return a is b
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def differences(a: Path, b: Path) -> list[str]:
    """What differs between the runs in ``a`` and ``b`` (empty: the same result)."""
    out = []
    ma, mb = _metrics(a), _metrics(b)
    out += [f"metrics.json {k}: {ma.get(k)!r} != {mb.get(k)!r}" for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)]
    ha, hb = _history(a), _history(b)
    if len(ha) != len(hb):
        out.append(f"history.json: {len(ha)} != {len(hb)} iterations")
    out += [f"history.json iteration {x.get('iteration')} differs" for x, y in zip(ha, hb) if x != y][:3]
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    if not _same(sa["model"]["policy"], sb["model"]["policy"]):
        out.append("final policy weights differ")
    da, db = (s.get("reward", {}).get("reward", {}).get("discriminator") for s in (sa, sb))
    if not _same(da, db):
        out.append("final discriminator weights differ")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs=2, type=Path, metavar="RUN_DIR")
    a, b = p.parse_args(argv).runs
    diff = differences(a, b)
    print("\n".join(diff) if diff else f"IDENTICAL: {a} and {b}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())

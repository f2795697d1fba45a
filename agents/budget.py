"""Adaptive compute by choosing each sample's step budget among a family of learned fixed-T policies.

A stop action drawn beside the step parameters (``adaptive_steps``) cannot tell the step parameters whether the
step is the sample's last, so its schedule is one T_max-step schedule cut short. A *family* of learned fixed-T
policies has a schedule made for every budget; what remains is to choose the budget of each sample before its
first step. Here the choice is a per-class table T(c), found by coordinate descent on the validation objective
``FID + lam * mean NFE`` (:func:`search_budget_table`): the objective is a population quantity (FID), which a
per-sample reward only estimates, and ten classes times a few budgets is a small, exactly searchable space.

- :class:`BudgetFamilyPolicy`: the family plus the table as one adaptive-step generation
  :class:`~adanat_env.policy.Policy` (the sampler and the evaluation take it as they take a stop-action policy;
  samples whose budget is spent leave the batch, so each step's NAT forward covers the running samples only).
- :func:`search_budget_table`: the table for one price ``lam`` of a NAT evaluation, from per-budget features.
- :func:`evaluate_family`: one seed's family from its fixed-T runs: tables chosen on validation, every arm
  evaluated on the test split as trained runs are (``benchmarks/family_allocation.py``, ``compare.py compute``).
- :func:`save_family_file` / :func:`load_family_file`: a family as a JSON file (member runs + table), which the
  sampling CLI takes (``python -m adanat_env.cli --family FILE``).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from adanat_env.decoding import StepParams
from adanat_env.evaluation.metrics import FeatureStats, extract_features, feature_stats, frechet_distance
from adanat_env.evaluation.sampling import evaluate_policy, sample_images
from adanat_env.schedules import heuristic_schedule
from adanat_env.policy import Policy, PolicyInput, StepDecision

from .export import load_generation_policy
from .training import (Trainer, metric_features, real_features, reference_of_test_split, run_classifier,
                       train_split)

__all__ = ["BudgetFamilyPolicy", "mixture_fid", "mean_nfe", "search_budget_table", "evaluate_family",
           "save_family_file", "load_family_file"]

#: metrics kept per evaluated arm
_KEYS = ("fid", "kid_x1e3", "precision", "recall", "coverage", "class_accuracy", "nfe_mean")


class BudgetFamilyPolicy:
    """Run each sample with the fixed-T policy of its class's budget: ``members[table[label]]``.

    :param members: T -> a generation policy made for T steps (a learned fixed-T run's
        :class:`~agents.generation_policy.SB3GenerationPolicy`, or a schedule).
    :param table: class -> T (a key of ``members``), for every class the policy will see.
    """

    adaptive_steps = True

    def __init__(self, members: Mapping[int, Policy], table: Mapping[int, int]) -> None:
        if not members:
            raise ValueError("a budget family needs at least one member policy")
        bad = {c: t for c, t in table.items() if t not in members}
        if bad:
            raise ValueError(f"budget table entries {bad} name no member policy (members: T = {sorted(members)})")
        for t, m in members.items():
            own = getattr(m, "num_steps", t)
            if own != t or getattr(m, "adaptive_steps", False):
                raise ValueError(f"member for T={t} must be a fixed {t}-step policy (got num_steps {own}, "
                                 f"adaptive {getattr(m, 'adaptive_steps', False)})")
        self.members = {int(t): members[t] for t in sorted(members)}
        self.table = {int(c): int(t) for c, t in table.items()}
        lut = torch.full((max(self.table) + 1,), -1, dtype=torch.long)
        for c, t in self.table.items():
            lut[c] = t
        self._lut = lut

    @property
    def num_steps(self) -> int:
        """T_max: the largest budget of the family."""
        return max(self.members)

    def budgets(self, labels: torch.Tensor) -> torch.Tensor:
        """(B,) step budget of each label (CPU long).

        :raises ValueError: a label outside the table.
        """
        y = labels.reshape(-1).long().cpu()
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self._lut) or bool((self._lut[y] < 0).any())):
            raise ValueError(f"labels {sorted(set(y.tolist()) - set(self.table))} have no budget in the table "
                             f"(classes {sorted(self.table)})")
        return self._lut[y]

    def __call__(self, inp: PolicyInput) -> StepDecision:
        budget = self.budgets(inp.labels)
        b = budget.shape[0]
        params = torch.empty((b, 4), dtype=torch.float32)
        for t, member in self.members.items():
            rows = torch.nonzero(budget == t).flatten()
            if len(rows) == 0:
                continue
            if inp.step >= t:  # cannot happen through the sampler: the row finished at its step t - 1
                raise RuntimeError(f"step {inp.step} asked of a sample whose budget is {t}")
            dev_rows = rows.to(inp.features.device)
            sub = PolicyInput(inp.features.index_select(0, dev_rows), inp.step, t,
                              inp.labels.index_select(0, rows.to(inp.labels.device)),
                              None if inp.logits is None else inp.logits.index_select(0, dev_rows))
            params[rows] = member(sub).as_tensor().float().cpu()
        return StepDecision(StepParams(*params.unbind(1)), budget == inp.step + 1)


def mixture_fid(features: Mapping[int, np.ndarray], labels: np.ndarray, table: Mapping[int, int],
                reference: FeatureStats) -> float:
    """FID of the mixture that takes class c's samples from the features of budget ``table[c]``.

    :param features: T -> (n, D) features of one sample set per budget, all generated for the same ``labels``.
    :param labels: (n,) labels of those samples.
    :param table: class -> T.
    :param reference: the real images' statistics.
    """
    rows = np.concatenate([features[table[c]][labels == c] for c in sorted(table)])
    return frechet_distance(feature_stats(rows), reference)


def mean_nfe(labels: np.ndarray, table: Mapping[int, int]) -> float:
    """Mean NAT evaluations per image of ``labels`` under the budget table."""
    return float(np.mean([table[int(c)] for c in labels]))


def search_budget_table(features: Mapping[int, np.ndarray], labels: np.ndarray, reference: FeatureStats,
                        lam: float, sweeps: int = 4) -> dict[int, int]:
    """The per-class budget table minimising ``mixture_fid + lam * mean_nfe`` by coordinate descent over the
    classes, from every class at the largest budget; a change is kept only when it lowers the objective.

    :param features: T -> (n, D) validation features per budget (same ``labels`` in each).
    :param labels: (n,) labels.
    :param reference: validation statistics (never the test split).
    :param lam: the price of one NAT evaluation per image, in FID points.
    :param sweeps: passes over the classes (stops early when a pass changes nothing).
    """
    budgets = sorted(features)
    table = {int(c): budgets[-1] for c in np.unique(labels)}

    def objective(tab: dict[int, int]) -> float:
        return mixture_fid(features, labels, tab, reference) + lam * mean_nfe(labels, tab)

    best = objective(table)
    for _ in range(sweeps):
        changed = False
        for c in sorted(table):
            for t in budgets:
                if t == table[c]:
                    continue
                trial = {**table, c: t}
                value = objective(trial)
                if value < best - 1e-9:
                    best, table, changed = value, trial, True
        if not changed:
            break
    return table


def evaluate_family(runs: Mapping[int, str | os.PathLike[str]], seed: int, lams: Sequence[float], *,
                    samples: int = 2000, members_too: bool = True, progress: bool = False,
                    cache: str | os.PathLike[str] = ".") -> list[dict[str, Any]]:
    """One seed's budget family from its fixed-T training runs, evaluated on the test split.

    Every member generates the same class-balanced validation samples (the trainer's held-out train images and
    validation sampler seed, ``seed + 999``); for each price in ``lams`` :func:`search_budget_table` picks the
    per-class table on validation only; the family with that table is then evaluated once on the test split as
    a trained run's final evaluation is (``evaluate_policy``: the same labels and sampler seed ``seed + 12345``).

    :param runs: T -> the run directory of a fixed-T policy trained with ``seed`` (its selected iterate is used).
    :param seed: the runs' seed.
    :param lams: prices of one NAT evaluation per image, in validation-FID points (one table each).
    :param samples: class-balanced samples per arm and split.
    :param members_too: also evaluate the heuristic and the member at each T (same samples as the family).
    :param cache: directory for the test reference where it is computed (own data sets).
    :return: one row per arm: ``arm``, ``lam``, ``table``, the test metrics (FID, KID x1e3, precision, recall,
        coverage, class accuracy, NFE per image) and, for the family, ``val_fid`` / ``val_nfe`` of its table.
    :raises ValueError: a run that is not a fixed-T run of ``seed`` with the T it is listed under.
    """
    with contextlib.ExitStack() as stack:
        members: dict[int, Policy] = {}
        trainer = None
        for t, run in sorted(runs.items()):
            trainer = Trainer.resume(run, log=lambda _: None)
            cfg = trainer.config
            if cfg.steps != t or cfg.adaptive_steps:
                raise ValueError(f"'{run}' is not a fixed T={t} run (steps {cfg.steps}, adaptive {cfg.adaptive_steps})")
            if cfg.seed != seed:
                raise ValueError(f"'{run}' has seed {cfg.seed}, not {seed}")
            members[int(t)], _ = stack.enter_context(trainer.selected())
        cfg, gen, dev = trainer.config, trainer.generator, trainer.device
        fn = metric_features(cfg, dev)
        ds, _, val_idx = train_split(cfg, gen)
        val_ref = feature_stats(real_features(fn, ds, val_idx, gen, dev))
        test_ref = reference_of_test_split(cfg, fn, gen, Path(cache), dev)
        clf = run_classifier(cfg, dev)
        val_feats: dict[int, np.ndarray] = {}
        labels = np.zeros(0)
        for t, policy in members.items():
            images, lab = sample_images(gen, policy, t, samples, seed=seed + 999)
            val_feats[t], labels = extract_features(fn, images), lab.numpy()
        rows: list[dict[str, Any]] = []

        def evaluate(arm: str, policy: Any, steps: int, lam: float | None, table: dict[int, int] | None) -> None:
            m, _ = evaluate_policy(gen, policy, steps, fn, test_ref, num_samples=samples, seed=seed + 12345,
                                   classifier=clf, progress=progress)
            row = {"arm": arm, "lam": lam, "table": table, **{k: float(m[k]) for k in _KEYS if k in m}}
            if lam is not None and table is not None:
                row["val_fid"] = mixture_fid(val_feats, labels, table, val_ref)
                row["val_nfe"] = mean_nfe(labels, table)
            rows.append(row)

        if members_too:
            for t in members:
                evaluate(f"heuristic T={t}", heuristic_schedule(t), t, None, None)
            for t, policy in members.items():
                evaluate(f"learned fixed T={t}", policy, t, None, {c: t for c in range(gen.num_classes)})
        for lam in lams:
            table = search_budget_table(val_feats, labels, val_ref, float(lam))
            evaluate(f"family, lam={lam:g}", BudgetFamilyPolicy(members, table), max(members), float(lam), table)
    return rows


#: ``format`` of a budget-family file (:func:`save_family_file`).
FAMILY_FORMAT = "adanat-budget-family/1"


def save_family_file(path: str | os.PathLike[str], members: Mapping[int, str | os.PathLike[str]],
                     table: Mapping[int, int], **info: Any) -> Path:
    """Write a budget family as JSON: the member runs (paths relative to the file) and the per-class table.

    :param path: the JSON file to write.
    :param members: T -> a fixed-T training run directory (or its ``checkpoint.pt``).
    :param table: class -> T.
    :param info: extra JSON-able provenance (e.g. ``lam``, ``validation_fid``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rel = {str(t): os.path.relpath(Path(p).resolve(), path.parent.resolve()) for t, p in sorted(members.items())}
    body = {"format": FAMILY_FORMAT, "members": rel, "table": {str(c): int(t) for c, t in sorted(table.items())},
            **info}
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def load_family_file(path: str | os.PathLike[str], device: str = "auto") -> tuple[Any, BudgetFamilyPolicy, int]:
    """A budget family from its file: (generator, :class:`BudgetFamilyPolicy`, T_max). Each member is the
    selected iterate of its run (:func:`agents.export.load_generation_policy`); all must share one generator.

    :raises FileNotFoundError: no such file, or a member run missing (named).
    :raises ValueError: not a family file, or members of different generators.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no budget-family file at '{path}' (write one with "
                                "benchmarks/family_allocation.py --out DIR or agents.budget.save_family_file)")
    try:
        body = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"'{path}' is not valid JSON ({e}); write family files with "
                         "agents.budget.save_family_file") from None
    if not isinstance(body, dict) or body.get("format") != FAMILY_FORMAT:
        raise ValueError(f"'{path}' is not a budget-family file (format {FAMILY_FORMAT!r})")
    missing = [k for k in ("members", "table") if not isinstance(body.get(k), dict)]
    if missing:
        raise ValueError(f"the budget-family file '{path}' has no {' and no '.join(missing)} (a mapping); write "
                         "family files with agents.budget.save_family_file")
    bad = [k for k in [*body["members"], *body["table"].values(), *body["table"]] if not str(k).isdigit()]
    if bad:
        raise ValueError(f"the budget-family file '{path}' has a step count or class that is not a whole number "
                         f"({bad[0]!r}); member keys and table entries are integers, e.g. \"4\"")
    members, generator, ref = {}, None, None
    for t, rel in sorted(body["members"].items(), key=lambda kv: int(kv[0])):
        run = path.parent / rel
        gen, policy, config = load_generation_policy(run, device)
        key = (config.env, config.nat_dir, config.tokenizer_dir, config.nat_checkpoint, config.weights)
        if ref is not None and key != ref:
            raise ValueError(f"member '{run}' uses another generator ({key}) than the first member ({ref})")
        generator, ref = generator or gen, key
        members[int(t)] = policy
    family = BudgetFamilyPolicy(members, {int(c): int(t) for c, t in body["table"].items()})
    return generator, family, family.num_steps

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
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from adanat_env.decoding import StepParams
from adanat_env.evaluation.metrics import FeatureStats, feature_stats, frechet_distance
from adanat_env.policy import Policy, PolicyInput, StepDecision

__all__ = ["BudgetFamilyPolicy", "mixture_fid", "mean_nfe", "search_budget_table"]


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
                              inp.labels.index_select(0, rows.to(inp.labels.device)))
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

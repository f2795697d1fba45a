"""The probe's per-sample rules and its setup, shared by ``probe.py``, ``reward_vs_fid.py``, ``judges.py``,
``batch_fid.py``, ``combined.py``, ``within_class.py`` and ``class_share.py``.

Each arm changes one parameter of a shared schedule at steps >= 1 by ``alpha * z``, where ``z`` is the
within-batch standardised mean, over the token positions, of the largest log probability of the NAT's
conditional logits (computed from the features by the NAT's own output layer). Additive for m and w,
multiplicative (``exp(alpha z)``) for the temperatures. ``+`` and ``-`` give the parameter the same spread across
samples, assigned in opposite directions.
"""

import argparse
import json
from dataclasses import replace

import torch

from agents.export import load_generation_policy, policy_schedule
from agents.paired import paired_evaluation, paired_summary
from agents.training.builders import real_images

#: (parameter, alpha) of each pair of arms.
ALPHAS = {"mask_ratio": 0.1, "sample_temp": 0.25, "remask_temp": 0.5, "guidance": 0.5}


def mean_confidence(generator, features: torch.Tensor) -> torch.Tensor:
    """(B,) the mean over the token positions of the largest log probability of the NAT's conditional logits,
    computed from the canvas's features by the NAT's own output layer."""
    nat = generator.nat
    with torch.inference_mode():
        logits = nat.mlm_layer(features.float(), nat.token_emb.word_embeddings.weight, nat.config.codebook_size)
        return logits.float().log_softmax(-1).amax(-1).mean(-1)


def batch_z(generator, features: torch.Tensor) -> torch.Tensor:
    """(B,) :func:`mean_confidence` standardised over the batch (on the CPU)."""
    s = mean_confidence(generator, features)
    return ((s - s.mean()) / s.std().clamp_min(1e-6)).cpu()


def confidence_rules(generator, base, fields=tuple(ALPHAS)):
    """``{"base": base, "<field>+": rule, "<field>-": rule, ...}`` for a NAT generator and a shared schedule."""

    def confidence_z(features: torch.Tensor) -> torch.Tensor:
        return batch_z(generator, features)

    def rule(field: str, alpha: float):
        def policy(inp):
            params = base(inp)
            if inp.step == 0:  # a fully masked canvas: nothing per sample to read yet
                return params
            z, v = confidence_z(inp.features), getattr(params, field)
            v = v + alpha * z if field in ("mask_ratio", "guidance") else v * torch.exp(alpha * z)
            return replace(params, **{field: v.clamp(0, 1) if field == "mask_ratio" else v})
        return policy

    arms = {"base": base}
    for field in fields:
        arms[f"{field}+"], arms[f"{field}-"] = rule(field, ALPHAS[field]), rule(field, -ALPHAS[field])
    return arms


def load_probe(run, fields=tuple(ALPHAS)):
    """(generator, run config, arms): a trained run's per-step mean schedule (over 100 samples, seed 0) as the
    base, with the rules of ``fields`` on it."""
    gen, pol, cfg = load_generation_policy(run, device="cpu")
    base, _ = policy_schedule(gen, pol, cfg.steps, 100, seed=0, name="base")
    return gen, cfg, confidence_rules(gen, base, fields)


def train_images(gen, cfg) -> torch.Tensor:
    """The run's real train images (the discriminator's), in [0, 1]: the judges' reference."""
    return real_images(cfg, gen, torch.device("cpu")).images.float().div(255.0)


def run_rules(make_rules, arms, heuristic=True):
    """The command line of ``combined.py`` and ``within_class.py``: ``RUN OUT.json [--eval-seeds ...]
    [--cache-dir DIR]``. ``make_rules(generator, base)`` gives the rules on the run's per-step mean schedule; they
    are evaluated paired with the run itself (and the heuristic), FID also in EfficientNet-Lite0 features."""
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--cache-dir", default="runs/paired_cache")
    a = p.parse_args()
    gen, pol, cfg = load_generation_policy(a.run, device="cpu")
    base, _ = policy_schedule(gen, pol, cfg.steps, 100, seed=0, name="base")
    table = paired_evaluation({"run": a.run}, eval_seeds=a.eval_seeds, heuristic=heuristic,
                              second_metric="efficientnet-lite0", schedules=make_rules(gen, base),
                              cache_dir=a.cache_dir, device="cpu")
    json.dump({"arms": arms, "table": table, "summary": paired_summary(table)}, open(a.out, "w"), indent=1,
              default=float)

"""Does a per-sample rule on the canvas's token confidence beat the shared schedule it perturbs? (issue 26)

Base: a trained step-only run's schedule. Each arm changes one parameter at steps >= 1 by ``alpha * z``, where ``z``
is the within-batch standardised mean, over the token positions, of the largest log probability of the NAT's
conditional logits (computed from the features by the NAT's own output layer). Additive for m and w,
multiplicative (``exp(alpha z)``) for the temperatures. ``+`` and ``-`` give the parameter the same spread across
samples, assigned in opposite directions: a difference between them is per-sample signal. Evaluated paired
(``agents.paired``: the same labels and noise, 5,000 test samples per evaluation seed).

    python docs/results/adaptation/confidence_probe/probe.py RUN OUT.json --eval-seeds 0
"""

import argparse
import json
from dataclasses import replace

import torch

from agents.export import load_generation_policy, policy_schedule
from agents.paired import paired_evaluation, paired_summary

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("out")
p.add_argument("--eval-seeds", type=int, nargs="+", default=[0])
p.add_argument("--cache-dir", default="runs/paired_cache")
a = p.parse_args()
gen, pol, cfg = load_generation_policy(a.run, device="cpu")
base, _ = policy_schedule(gen, pol, cfg.steps, 100, seed=0, name="base")
nat, vocab = gen.nat, gen.nat.config.codebook_size


def confidence_z(features: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        logits = nat.mlm_layer(features.float(), nat.token_emb.word_embeddings.weight, vocab)
        s = logits.float().log_softmax(-1).amax(-1).mean(-1)
    return ((s - s.mean()) / s.std().clamp_min(1e-6)).cpu()


class Rule:
    def __init__(self, field: str, alpha: float) -> None:
        self.field, self.alpha = field, alpha

    def __call__(self, inp):
        params = base(inp)
        if inp.step == 0:  # a fully masked canvas: nothing per sample to read yet
            return params
        z, v = confidence_z(inp.features), getattr(params, self.field)
        v = v + self.alpha * z if self.field in ("mask_ratio", "guidance") else v * torch.exp(self.alpha * z)
        return replace(params, **{self.field: v.clamp(0, 1) if self.field == "mask_ratio" else v})


arms = {"base": base}
for field, alpha in [("mask_ratio", 0.1), ("sample_temp", 0.25), ("remask_temp", 0.5), ("guidance", 0.5)]:
    arms[f"{field}+"], arms[f"{field}-"] = Rule(field, alpha), Rule(field, -alpha)
table = paired_evaluation({"run": a.run}, eval_seeds=a.eval_seeds, schedules=arms, heuristic=False,
                          cache_dir=a.cache_dir, device="cpu")
json.dump({"table": table, "summary": paired_summary(table)}, open(a.out, "w"), indent=1, default=float)

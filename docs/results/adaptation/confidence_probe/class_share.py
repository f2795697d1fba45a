"""How much of the probe's batch-standardised confidence z is the class? (``combined.py``'s reading)

Runs a trained run's per-step mean schedule on 500 class-balanced samples and prints, at each step >= 1, every
class's mean z and the class's share of z's variance (the mean of the squared class means: z has unit variance).

    python docs/results/adaptation/confidence_probe/class_share.py RUN
"""

import sys

import torch

from adanat_env.sampler import generate
from agents.export import load_generation_policy, policy_schedule
from rules import batch_z

gen, pol, cfg = load_generation_policy(sys.argv[1], device="cpu")
base, _ = policy_schedule(gen, pol, cfg.steps, 100, seed=0, name="base")
k = gen.num_classes
means = {}


def policy(inp):
    if inp.step >= 1:
        z = batch_z(gen, inp.features)
        means[inp.step] = torch.stack([z[inp.labels == c].mean() for c in range(k)])
    return base(inp)


generate(gen, torch.arange(500) % k, policy, cfg.steps, seed=0, decode=False)
for t, m in means.items():
    print(f"step {t}: class share of z's variance {float((m ** 2).mean()):.2f}; class means",
          " ".join(f"{x:+.2f}" for x in m.tolist()))

"""Does the adversarial reward rank the per-sample confidence rules as FID does? (issue 26)

Scores the images of the probe's arms (``probe.py``: a shared schedule, each arm moving one parameter with the
canvas's standardised token confidence) with a trained run's discriminator, as its rollouts were rewarded (the
jackknife reward and the plain mean logit), on the same labels and noise for every arm.

    python docs/results/adaptation/confidence_probe/reward_vs_fid.py SCHEDULE_RUN DISCRIMINATOR_RUN OUT.json
"""

import argparse
import json
import shutil
import tempfile

import torch

from adanat_env.evaluation.sampling import sample_images
from agents.training import Trainer
from rules import load_probe

p = argparse.ArgumentParser()
p.add_argument("schedule_run")
p.add_argument("discriminator_run")
p.add_argument("out")
p.add_argument("--samples", type=int, default=4800)
a = p.parse_args()
gen, cfg, arms = load_probe(a.schedule_run, fields=("sample_temp", "remask_temp", "guidance"))
with tempfile.TemporaryDirectory() as tmp:  # a copy: resuming never touches the run itself
    shutil.copytree(a.discriminator_run, f"{tmp}/run", ignore=shutil.ignore_patterns("*.png"))
    reward = Trainer.resume(f"{tmp}/run", log=lambda _: None).discriminator.reward
out = {}
for name, policy in arms.items():
    images, labels = sample_images(gen, policy, cfg.steps, a.samples, seed=777_000, batch_size=480)
    r = torch.cat([reward(x, y) for x, y in zip(images.split(480), labels.split(480))])
    logit = torch.cat([reward.logits(x, y) for x, y in zip(images.split(480), labels.split(480))])
    out[name] = {"jackknife_reward": float(r.mean()), "mean_logit": float(logit.mean())}
    print(name, out[name], flush=True)
json.dump(out, open(a.out, "w"), indent=1)

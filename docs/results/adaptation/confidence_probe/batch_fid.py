"""Does a batch-sized FID rank the probe's arms as the 5,000-sample FID does? (issue 26)

A reward credits samples through the FID of a training batch (512 generations), not of 5,000: the probe's τ1, τ2 and
w arms (``rules.py``), 9 disjoint batches of 512 each (the same labels and noise for every arm), scored in a
classifier's feature space against the train split, plain and jackknife bias-corrected
(``rewards.fid_reward.jackknife_fid``: ``n FID(X) - (n - 1) mean_i FID(X_-i)``, what the mean of the FID reward is).

    python docs/results/adaptation/confidence_probe/batch_fid.py RUN CLASSIFIER_DIR OUT.json
"""

import argparse
import json

import numpy as np
import torch

from adanat_env.evaluation.metrics import feature_extractor, feature_stats
from adanat_env.evaluation.sampling import sample_images
from rewards.fid_reward import jackknife_fid
from rules import load_probe, train_images

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("classifier_dir")
p.add_argument("out")
p.add_argument("--batch", type=int, default=512)
p.add_argument("--batches", type=int, default=9)
a = p.parse_args()
gen, cfg, arms = load_probe(a.run, fields=("sample_temp", "remask_temp", "guidance"))
fn = feature_extractor("classifier", classifier_dir=a.classifier_dir)
reals = train_images(gen, cfg)
ref = feature_stats(torch.cat([fn(x) for x in reals.split(1000)]).double().numpy())
n, out = a.batch, {}
for name, policy in arms.items():
    images, _ = sample_images(gen, policy, cfg.steps, n * a.batches, seed=777_000, batch_size=n)
    f = torch.cat([fn(x) for x in images.split(n)]).double()
    plain, jack = [], []
    for x in f.split(n):
        full, loo = jackknife_fid(x, ref)
        plain.append(float(full))
        jack.append(float(n * full - (n - 1) * loo.mean()))
    out[name] = {"plain": plain, "jackknife": jack, "plain_mean": float(np.mean(plain)),
                 "jackknife_mean": float(np.mean(jack))}
    print(name, round(out[name]["plain_mean"], 2), round(out[name]["jackknife_mean"], 2), flush=True)
json.dump(out, open(a.out, "w"), indent=1)

"""Do other feature spaces rank the probe's per-sample rules as the classifier's FID does? (issue 26)

The arms of ``rules.py`` on a trained step-only run's schedule, 5,000 class-balanced samples each (the same
labels and noise for every arm), each scored by FID against the real TRAIN split in three feature spaces:

- ``classifier``: the project's metric (the data set's classifier);
- ``nat``: the frozen NAT's own features of the re-tokenised image (``Generator.canvas_features``: what the default
  discriminator, ``projected-nat``, reads), pooled over the tokens as mean and std (``nat_meanstd``) or mean only;
- ``efficientnet-lite0``: ImageNet-pretrained, the evaluation's second space (reference: the first 6,000 train
  images);
- with ``--classifier2 DIR``, ``classifier2``: another classifier of the same data (``train_classifier.py
  --feature-dim 256 --seed 1``), a second in-domain judge.

    python docs/results/adaptation/confidence_probe/judges.py RUN OUT.json [--classifier2 DIR]
"""

import argparse
import json

import numpy as np
import torch

from adanat_env.evaluation.metrics import feature_extractor, feature_stats, frechet_distance
from adanat_env.evaluation.sampling import sample_images
from rules import load_probe, train_images

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("out")
p.add_argument("--classifier2", default=None)
a = p.parse_args()
gen, cfg, arms = load_probe(a.run)
clf, eff = feature_extractor("classifier"), feature_extractor("efficientnet-lite0")
judges = {"classifier": (clf, 1000), "efficientnet-lite0": (eff, 250)}
if a.classifier2:
    judges["classifier2"] = (feature_extractor("classifier", classifier_dir=a.classifier2), 1000)


def nat_features(images: torch.Tensor) -> np.ndarray:
    out = []
    for x in images.split(500):
        f = gen.canvas_features(gen.encode(x))  # (B, N, D)
        out.append(torch.cat([f.mean(1), f.std(1)], 1))
    return torch.cat(out).double().numpy()


def stats(fn, images: torch.Tensor, batch: int) -> np.ndarray:
    return torch.cat([fn(x) for x in images.split(batch)]).double().numpy()


reals = train_images(gen, cfg)
nat_real = nat_features(reals)
d = nat_real.shape[1] // 2
ref = {"nat_mean": feature_stats(nat_real[:, :d]), "nat_meanstd": feature_stats(nat_real)}
for name, (fn, batch) in judges.items():
    ref[name] = feature_stats(stats(fn, reals[:6000] if name == "efficientnet-lite0" else reals, batch))
out = {}
for name, policy in arms.items():
    images, _ = sample_images(gen, policy, cfg.steps, 5000, seed=777_000, batch_size=500)
    f = nat_features(images)
    out[name] = {"nat_mean": frechet_distance(feature_stats(f[:, :d]), ref["nat_mean"]),
                 "nat_meanstd": frechet_distance(feature_stats(f), ref["nat_meanstd"])}
    for judge, (fn, batch) in judges.items():
        out[name][judge] = frechet_distance(feature_stats(stats(fn, images, batch)), ref[judge])
    print(name, {k: round(v, 3) for k, v in out[name].items()}, flush=True)
json.dump(out, open(a.out, "w"), indent=1)

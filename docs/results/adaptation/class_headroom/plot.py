"""The per-class FID of every menu candidate against the base schedule's, in the metric's classifier space and in
EfficientNet-Lite0 features (test split, mean over the two evaluation seeds).

    python docs/results/adaptation/class_headroom/plot.py headroom_so36_s0.json headroom_so36_s0.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CLASSES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
d = json.load(open(sys.argv[1]))["score"]
names = [k.split(":", 1)[1] for k in d[next(iter(d))] if k.startswith("cand:")]
spaces = {"classifier": "metric's classifier", "efficientnet-lite0": "EfficientNet-Lite0"}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
for ax, (space, title) in zip(axes, spaces.items()):
    pc = {n: np.mean([d[s][f"cand:{n}"][f"per_class_fid_{space}"] for s in d], 0) for n in names}
    rel = np.array([100 * (pc[n] / pc["base"] - 1) for n in names])
    im = ax.imshow(rel, cmap="RdBu_r", vmin=-40, vmax=40, aspect="auto")
    for i in range(rel.shape[0]):
        for j in range(rel.shape[1]):
            ax.text(j, i, f"{rel[i, j]:+.0f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_title(f"per-class FID vs base, % ({title})")
fig.colorbar(im, ax=axes, shrink=0.8, label="% change of the class's FID (blue: better)")
fig.savefig(sys.argv[2], dpi=110)

"""Choose the discriminator by measurement: how fast each design learns to tell the embedded generator's images
from real ones, and how well its reward ranks samples by quality.

Protocol: a pool of fake images from the heuristic schedule with exploration noise (std 0.6 in action space,
what the first rollouts look like) and real train images; each discriminator trains ``--steps`` BCE steps
(batch 128, Adam (0.5, 0.999), the same lr) on them; reported every ``--every`` steps:

- held-out accuracy on fresh fakes / real TEST images (higher = learns faster),
- Spearman correlation between its reward and the classifier's confidence in the label on held-out fakes
  (a quality proxy independent of the discriminator; higher = the reward ranks better samples higher),
- training time per step.

    python benchmarks/compare_discriminators.py --steps 300
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from adanat_env.data import load_idx_dataset
from adanat_env.embedded import load_embedded_generator
from adanat_env.sampler import generate
from adanat_env.actions import ActionMapping
from adanat_env.models.classifier import load_classifier
from adanat_env.utils import seed_everything
from rewards.adversarial import AdversarialReward, RealImages
from rewards.discriminator import DISCRIMINATORS, build_discriminator


class NoisyHeuristic:
    """Heuristic schedule + Gaussian noise of std ``std`` on the raw action (as the initial PPO policy)."""

    def __init__(self, steps: int, std: float, seed: int) -> None:
        self.mapping, self.std, self.num_steps = ActionMapping(steps, residual=True), std, steps
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self, inp):
        a = torch.randn(inp.labels.shape[0], 4, generator=self.g) * self.std
        return self.mapping(a, inp.step)


def run_one(a, kind, gen, real_imgs, real_labels, fakes, labels, held, held_labels, test_imgs, test_labels,
            quality) -> dict:
    seed_everything(a.seed)
    d = build_discriminator(kind, gen.image_shape, gen.num_classes, sn=not a.no_sn, width=a.width, generator=gen)
    reward = AdversarialReward(d, RealImages(real_imgs, real_labels, a.device, a.seed), lr=a.lr, seed=a.seed)
    rng = torch.Generator().manual_seed(a.seed)
    curve, t_train = [], 0.0
    for step in range(1, a.steps + 1):
        idx = torch.randint(a.pool, (128,), generator=rng)
        t0 = time.perf_counter()
        reward.update(fakes[idx], labels[idx])
        t_train += time.perf_counter() - t0
        if step % a.every == 0:
            lf, lr_ = reward.logits(held, held_labels), reward.logits(test_imgs, test_labels)
            acc = 0.5 * float((lf < 0).float().mean() + (lr_ > 0).float().mean())
            rho = spearmanr(lf.numpy(), quality.numpy()).statistic
            curve.append({"step": step, "heldout_acc": round(acc, 4), "spearman_vs_classifier_conf": round(float(rho), 4)})
            print(kind, curve[-1], flush=True)
    t0 = time.perf_counter()
    for _ in range(5):
        reward(held[:256], held_labels[:256])
    return {"curve": curve, "train_ms_per_step": round(1e3 * t_train / a.steps, 1),
            "reward_ms_per_256": round(1e3 * (time.perf_counter() - t0) / 5, 1),
            "trainable_params": sum(q.numel() for q in d.parameters() if q.requires_grad)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--pool", type=int, default=2048)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--kinds", nargs="+", default=["conv", "projected-nat"], choices=list(DISCRIMINATORS))
    p.add_argument("--no-sn", action="store_true", help="without spectral normalisation")
    p.add_argument("--width", type=int, default=64, help="width of the conv discriminator")
    p.add_argument("--out", default="docs/results/discriminator_comparison.json")
    a = p.parse_args()
    seed_everything(a.seed)
    gen = load_embedded_generator(a.device, "bf16")
    pol = NoisyHeuristic(a.T, 0.6, a.seed)
    labels = torch.arange(a.pool) % gen.num_classes
    fakes = torch.cat([generate(gen, l, pol, a.T, seed=a.seed + i).images.float() for i, l in enumerate(labels.split(512))])
    held_labels = torch.arange(1000) % gen.num_classes
    held = torch.cat([generate(gen, l, pol, a.T, seed=10_000 + i).images.float() for i, l in enumerate(held_labels.split(500))])
    test = load_idx_dataset("test")
    real_test = torch.as_tensor(test.images[:1000]).float().div(255)[:, None]
    real_test_labels = torch.as_tensor(test.labels[:1000])
    clf = load_classifier(device=a.device)
    with torch.inference_mode():
        quality = clf.label_probability(held, held_labels)
    train = load_idx_dataset("train")
    real_imgs = torch.as_tensor(train.images[:12000])
    results = {kind: run_one(a, kind, gen, real_imgs, train.labels[:12000], fakes, labels, held, held_labels, real_test,
                             real_test_labels, quality) for kind in a.kinds}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"config": vars(a), "results": results}, indent=2))
    print(json.dumps({k: {kk: v[kk] for kk in ("train_ms_per_step", "reward_ms_per_256")} for k, v in results.items()}))


if __name__ == "__main__":
    main()

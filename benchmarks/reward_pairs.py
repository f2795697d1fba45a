"""Would common random numbers make the adversarial reward less noisy? (measure before building it)

    python benchmarks/reward_pairs.py runs/ppo_adversarial [--pairs 256]

Generates each of ``--pairs`` class-balanced samples twice with the run's current policy and sampled actions
(its exploration std), with the *same* decoding noise (tokens, re-masking Gumbels) and different exploration
noise, plus a third time with independent decoding noise. If the rewards of a shared-noise pair were strongly
correlated, their difference would attribute the reward to the action (a pair baseline, RLOO-style) and cut
the policy gradient's variance by about the correlation. Prints the correlation of the run's reward (and of the
plain mean logit) within shared-noise and independent pairs, class means removed, and how far the images of a
pair differ.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from adanat_env.evaluation.sampling import balanced_labels
from adanat_env.sampler import generate
from agents.training import Trainer


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a training run directory with the adversarial reward (or its checkpoint.pt)")
    p.add_argument("--pairs", type=int, default=256, help="pairs (default: 256)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    args = p.parse_args(argv)

    trainer = Trainer.resume(args.run, log=lambda *_: None)
    if trainer.discriminator is None:
        raise SystemExit(f"{args.run} was not trained with the adversarial reward")
    gen, reward, steps = trainer.generator, trainer.discriminator.reward, trainer.config.steps
    policy = trainer.generation_policy(deterministic=False)
    labels = balanced_labels(args.pairs, gen.num_classes, gen.device)

    def images(noise_seed: int, action_seed: int) -> torch.Tensor:
        torch.manual_seed(action_seed)  # the exploration noise of the SB3 policy
        with torch.inference_mode():
            return generate(gen, labels, policy, steps, rng=gen.make_rng(noise_seed)).images

    a, b, c = images(args.seed + 1, args.seed + 10), images(args.seed + 1, args.seed + 11), images(args.seed + 2, args.seed + 12)

    def centred(r: torch.Tensor) -> np.ndarray:
        r = r.float().cpu().clone()
        y = labels.cpu()
        for k in y.unique():
            r[y == k] -= r[y == k].mean()
        return r.numpy()

    out: dict[str, float] = {}
    scorers = {"reward": lambda x: reward(x, labels), "mean logit": lambda x: reward.logits(x, labels)}
    for name, f in scorers.items():
        ra, rb, rc = centred(f(a)), centred(f(b)), centred(f(c))
        out[f"{name}: shared-noise corr"] = float(np.corrcoef(ra, rb)[0, 1])
        out[f"{name}: independent corr"] = float(np.corrcoef(ra, rc)[0, 1])
    out["mean |pixel difference|, shared noise"] = float((a - b).abs().mean())
    out["mean |pixel difference|, independent"] = float((a - c).abs().mean())
    for k, v in out.items():
        print(f"{k:42s} {v:.3f}")
    return out


if __name__ == "__main__":
    main()

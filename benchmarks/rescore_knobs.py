"""Which of a trained policy's moves buy its FID? Re-score it with single knobs put back to the heuristic's.

    python benchmarks/rescore_knobs.py runs/ppo_adversarial                     # its selected iterate
    python benchmarks/rescore_knobs.py runs/ppo_adversarial --samples 2000 --hold sample_temp@-1 sample_temp

Every variant generates the same ``--samples`` class-balanced images (same seed) with the run's policy (mean
action), except that the knobs named in it are replaced by the heuristic schedule's values at the given steps
(``component`` = every step, ``component@k`` = step k, negative from the end; the env's ``frozen_actions``), and is
scored against the run's *validation* reference (held-out train images; the test split is never touched):
FID, KID, precision, recall, coverage. A move whose removal costs FID is what the gain is made of; one whose
removal costs nothing but returns recall (e.g. the late sampling temperature) is a candidate to hold at the heuristic.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from adanat_env.actions import ACTION_NAMES, frozen_mask
from adanat_env.evaluation.metrics import evaluate_images
from adanat_env.evaluation.sampling import sample_images
from adanat_env.schedules import heuristic_schedule
from agents.training import Trainer

class HeldKnobs:
    """A generation policy with some (step, knob) entries replaced by the heuristic schedule's values.

    :param policy: the policy (any :class:`~adanat_env.policy.Policy` returning StepParams).
    :param held: (T, 4) bool in :data:`ACTION_NAMES` order (:func:`~adanat_env.actions.frozen_mask`).
    """

    def __init__(self, policy, held: torch.Tensor, num_steps: int) -> None:  # type: ignore[no-untyped-def]
        self.policy, self.held, self.heuristic = policy, held, heuristic_schedule(num_steps)
        self.num_steps = num_steps

    def __call__(self, inp):  # type: ignore[no-untyped-def]
        params, ref = self.policy(inp), self.heuristic(inp)
        for j, name in enumerate(ACTION_NAMES):  # the raw component names are StepParams' field names
            if self.held[inp.step, j]:
                params = dataclasses.replace(params, **{name: getattr(ref, name).expand_as(getattr(params, name)).clone()})
        return params


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a training run directory (or its checkpoint.pt)")
    p.add_argument("--samples", type=int, default=2000, help="samples per variant (default: 2000)")
    p.add_argument("--hold", nargs="+", default=["sample_temp@-1", "sample_temp@-1,sample_temp@-2", "sample_temp"],
                   help="variants: comma-separated knobs held at the heuristic (component or component@k)")
    p.add_argument("--out", default="", help="write the table as JSON here")
    args = p.parse_args(argv)

    trainer = Trainer.resume(args.run, log=lambda *_: None)
    cfg, gen = trainer.config, trainer.generator
    validation = trainer.validation()
    fn, ref = validation.fn, validation.ref
    heur = heuristic_schedule(cfg.steps)
    results: dict[str, dict[str, float]] = {}
    with trainer.selected() as (policy, iteration):
        print(f"{args.run}: the policy of iteration {iteration}, {args.samples} samples per variant, validation reference")
        variants = {"heuristic": heur, "learned": policy}
        for spec in args.hold:
            held = frozen_mask(tuple(n.strip() for n in spec.split(",") if n.strip()), cfg.steps)
            variants[f"learned, {spec} held"] = HeldKnobs(policy, held, cfg.steps)
        for name, pol in variants.items():
            images, _ = sample_images(gen, pol, cfg.steps, args.samples, seed=cfg.seed + 999)
            results[name] = evaluate_images(fn, images, ref)
            r = results[name]
            print(f"{name:44s} FID {r['fid']:6.2f}  KID {r['kid_x1e3'] / 1e3:6.2f}  precision {r['precision']:.3f}  "
                  f"recall {r['recall']:.3f}  coverage {r['coverage']:.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()

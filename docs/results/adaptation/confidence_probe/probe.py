"""Does a per-sample rule on the canvas's token confidence beat the shared schedule it perturbs? (issue 26)

Base: a trained step-only run's schedule; the arms are ``rules.py``'s: a difference between an arm's ``+`` and
``-`` is per-sample signal. Evaluated paired (``agents.paired``: the same labels and noise, 5,000 test samples
per evaluation seed).

    python docs/results/adaptation/confidence_probe/probe.py RUN OUT.json --eval-seeds 0
"""

import argparse
import json

from agents.paired import paired_evaluation, paired_summary
from rules import load_probe

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("out")
p.add_argument("--eval-seeds", type=int, nargs="+", default=[0])
p.add_argument("--cache-dir", default="runs/paired_cache")
a = p.parse_args()
gen, cfg, arms = load_probe(a.run)
table = paired_evaluation({"run": a.run}, eval_seeds=a.eval_seeds, schedules=arms, heuristic=False,
                          cache_dir=a.cache_dir, device="cpu")
json.dump({"table": table, "summary": paired_summary(table)}, open(a.out, "w"), indent=1, default=float)

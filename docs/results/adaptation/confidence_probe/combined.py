"""How much can per-sample rules on the canvas's confidence give, combined? (issue 26: the headroom of points 1-2)

``probe.py`` moved one parameter at a time (each worth at most about 4% in the metric's space). Here the two
best single rules act together (hotter sampling and less guidance for a confident canvas), at the probe's step
and at twice it, with the re-masking rule added. Base: a trained step-only run's per-step mean schedule. Paired
(``agents.paired``: the same labels and noise, 5,000 test samples per evaluation seed), FID in the metric's space
and in EfficientNet-Lite0 features.

    python docs/results/adaptation/confidence_probe/combined.py RUN OUT.json --eval-seeds 0 1
"""

from dataclasses import replace

import torch

from rules import batch_z, run_rules

#: arm -> {field: alpha}: each field moves by alpha * z at steps >= 1 (additive for m and w, exp(alpha z) for
#: the temperatures), z the within-batch standardised mean confidence of the canvas (``rules.py``).
ARMS = {
    "tau1+": {"sample_temp": 0.25},
    "w-": {"guidance": -0.5},
    "tau1+ w-": {"sample_temp": 0.25, "guidance": -0.5},
    "tau1+ w- tau2+": {"sample_temp": 0.25, "guidance": -0.5, "remask_temp": 0.5},
    "2x (tau1+ w-)": {"sample_temp": 0.5, "guidance": -1.0},
    "-(tau1+ w-)": {"sample_temp": -0.25, "guidance": 0.5},
}


def combined_rules(generator, base):
    def rule(alphas):
        def policy(inp):
            params = base(inp)
            if inp.step == 0:
                return params
            z, new = batch_z(generator, inp.features), {}
            for field, a in alphas.items():
                v = getattr(params, field)
                new[field] = v + a * z if field in ("mask_ratio", "guidance") else v * torch.exp(a * z)
            return replace(params, **new)
        return policy

    return {"base": base, **{name: rule(al) for name, al in ARMS.items()}}


run_rules(combined_rules, ARMS)

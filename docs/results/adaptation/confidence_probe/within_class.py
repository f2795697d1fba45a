"""Is the probe's per-sample signal more than a class signal? (issue 26: the headroom of points 1-2)

``probe.py`` and ``combined.py`` standardise the canvas's confidence over the whole batch, so a "confident
canvas" is partly a class whose canvases are all confident (trousers). Here z is standardised within each class
of the batch: the rule then moves samples of one class against each other only, and a class's mean parameter
stays its schedule's. Base: a trained step-only run's schedule (the run itself). Paired (``agents.paired``: the
same labels and noise, 5,000 test samples per evaluation seed), FID in the metric's space and in
EfficientNet-Lite0 features.

    python docs/results/adaptation/confidence_probe/within_class.py RUN OUT.json --eval-seeds 0 1
"""

from dataclasses import replace

import torch

from rules import mean_confidence, run_rules

#: arm -> (field, alpha): the field moves by alpha * z at steps >= 1 (additive for w, exp(alpha z) for tau1).
ARMS = {"tau1+ within class": ("sample_temp", 0.25), "tau1- within class": ("sample_temp", -0.25),
        "w- within class": ("guidance", -0.5)}


def within_class_rules(generator, base, num_classes):
    def confidence_z(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        s = mean_confidence(generator, features).cpu()
        y = labels.cpu().long()
        n = torch.zeros(num_classes).index_add_(0, y, torch.ones_like(s)).clamp_min(1)
        mean = torch.zeros(num_classes).index_add_(0, y, s) / n
        var = torch.zeros(num_classes).index_add_(0, y, (s - mean[y]) ** 2) / (n - 1).clamp_min(1)
        return (s - mean[y]) / var.sqrt().clamp_min(1e-6)[y]

    def rule(field, a):
        def policy(inp):
            params = base(inp)
            if inp.step == 0:
                return params
            z, v = confidence_z(inp.features, inp.labels), getattr(params, field)
            return replace(params, **{field: v + a * z if field == "guidance" else v * torch.exp(a * z)})
        return policy

    return {name: rule(*fa) for name, fa in ARMS.items()}


run_rules(lambda gen, base: within_class_rules(gen, base, gen.num_classes), ARMS, heuristic=False)

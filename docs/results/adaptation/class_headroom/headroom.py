"""How much could choosing the schedule per class pay, by both judge families? (issue 26's headroom)

A menu of shared schedules: a trained run's per-step schedule (``base``), the same with one parameter moved by the
confidence probe's step (m +-0.1 before the last step, tau1 x exp(+-0.25), tau2 x exp(+-0.5), w +-0.5, at every
step), and the official heuristic. Every candidate generates 5,000 class-balanced samples at evaluation seeds 0 and
1 (``agents.paired``'s sampler seeds: the same labels and noise for every candidate), featurised in three spaces:
the metric's classifier, a second classifier of the same data (``--classifier2``) and EfficientNet-Lite0.

Per class, a selector picks the candidate whose samples of that class have the lowest per-class FID against the
run's held-out TRAIN images (its validation split) in one judge's space, at one evaluation seed. The composite
(each class's samples from its chosen candidate) is then scored at the OTHER evaluation seed against the test
split, in every space: an honest estimate of what a per-class schedule drawn from this menu gains. ``oracle``
selects and scores at the same seed (the winner's curse included); ``single`` picks one candidate for all classes
the same way, so the per-class gain is ``composite`` against ``single``.

    python docs/results/adaptation/class_headroom/headroom.py RUN OUT.json --classifier2 DIR [--eval-seeds 0]

Features are cached under ``--work`` per candidate and evaluation seed: run one process per evaluation seed, then
once more with both seeds to analyse.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from adanat_env.evaluation.metrics import evaluate_features, extract_features, feature_stats, frechet_distance
from adanat_env.evaluation.sampling import sample_images
from adanat_env.schedules import heuristic_schedule
from agents.export import load_generation_policy, policy_schedule
from agents.paired import EVAL_SEED_BASE, SplitSpace, per_class_metrics, split_cache_folder
from agents.training.builders import run_classifier, train_split

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("out")
p.add_argument("--classifier2", required=True)
p.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1])
p.add_argument("--samples", type=int, default=5000)
p.add_argument("--work", default="runs/class_headroom")
p.add_argument("--cache-dir", default="runs/paired_cache")
a = p.parse_args()
torch.set_grad_enabled(False)

gen, pol, cfg = load_generation_policy(a.run, device="cpu")
base, _ = policy_schedule(gen, pol, cfg.steps, 100, seed=0, name="base")
T = cfg.steps


def moved(field, delta, mult):
    v = np.asarray(getattr(base, field), dtype=float)
    if field == "mask_ratio":
        v = np.concatenate([np.clip(v[:-1] + delta, 0.0, 1.0), v[-1:]])
    else:
        v = v * np.exp(delta) if mult else np.clip(v + delta, 0.0, None)
    return replace(base, **{field: tuple(float(x) for x in v)})


menu = {"base": base, "heuristic": heuristic_schedule(T)}
for field, step, mult in (("mask_ratio", 0.1, False), ("sample_temp", 0.25, True), ("remask_temp", 0.5, True),
                          ("guidance", 0.5, False)):
    menu[f"{field}+"], menu[f"{field}-"] = moved(field, step, mult), moved(field, -step, mult)

spaces = {"classifier": "classifier", "classifier2": f"classifier:{a.classifier2}",
          "efficientnet-lite0": "efficientnet-lite0"}
work = Path(a.work)
work.mkdir(parents=True, exist_ok=True)
# each space's test reference, cached where agents.paired caches it; its feature function featurises the samples
tdir = split_cache_folder(cfg, a.cache_dir)
test = {s: SplitSpace(cfg, m, gen, tdir, torch.device("cpu")) for s, m in spaces.items()}
fns = {s: space.fn for s, space in test.items()}
clf = run_classifier(cfg, torch.device("cpu"))


def candidate(name, k):
    path = work / f"{name}_seed{k}.npz"
    if not path.is_file():
        images, labels = sample_images(gen, menu[name], T, a.samples, seed=EVAL_SEED_BASE + k)
        out = {f"f_{s}": extract_features(fn, images) for s, fn in fns.items()}
        pred = torch.cat([clf(b).argmax(1) for b in images.split(1000)]).numpy()
        tmp = path.with_suffix(".tmp.npz")  # written whole, then renamed: a killed run leaves no half file
        np.savez(tmp, labels=labels.numpy(), pred=pred, **out)
        tmp.replace(path)
        print(f"seed {k} {name}: done", flush=True)
    with np.load(path) as z:
        return {key: z[key] for key in z.files}


data = {k: {name: candidate(name, k) for name in menu} for k in a.eval_seeds}
if len(a.eval_seeds) < 2:
    raise SystemExit(0)

# selection references: the run's validation split (held-out train images), per class
vpath = work / "validation.npz"
if not vpath.is_file():
    ds, _, val = train_split(cfg, gen)
    images, labels = ds.load(val, gen.image_shape[-1], gen.image_shape[0])
    x = images.float().div(255.0)
    tmp = vpath.with_suffix(".tmp.npz")
    np.savez(tmp, labels=np.asarray(labels), **{f"f_{s}": extract_features(fn, x) for s, fn in fns.items()})
    tmp.replace(vpath)
with np.load(vpath) as z:
    val = {key: z[key] for key in z.files}
C = gen.num_classes


def per_class_val(d, space):
    return np.array(per_class_metrics(d[f"f_{space}"], d["labels"], val[f"f_{space}"], val["labels"], C,
                                      recall=False)["fid"])


def compose(choice, k):
    """Each class's samples (features, predictions) from its chosen candidate, at evaluation seed k."""
    labels = data[k]["base"]["labels"]
    out = {key: data[k]["base"][key].copy() for key in data[k]["base"]}
    for c, name in enumerate(choice):
        rows = labels == c
        for key in out:
            out[key][rows] = data[k][name][key][rows]
    return out


def score(d, k, heur):
    row = {}
    for s in spaces:
        f = d[f"f_{s}"]
        if s == "classifier":
            m = evaluate_features(f, test[s].ref, seed=k)
            row.update(fid=m["fid"], kid_x1e3=m["kid_x1e3"], precision=m["precision"], recall=m["recall"])
        else:
            row[f"fid_{s}"] = frechet_distance(feature_stats(f), test[s].ref.stats)
        pc = np.array(per_class_metrics(f, d["labels"], test[s].features, test[s].labels, C, recall=False)["fid"])
        row[f"per_class_fid_{s}"] = pc.tolist()
        if heur is not None:
            row[f"worst_class_vs_heuristic_{s}"] = float((pc / np.array(heur[f"per_class_fid_{s}"]) - 1).max())
    row["class_accuracy"] = float((d["pred"] == gen.label_classes(torch.as_tensor(d["labels"])).numpy()).mean())
    return row


# per-class validation FID of every candidate, each space and seed
pcv = {k: {s: {name: per_class_val(data[k][name], s) for name in menu} for s in spaces} for k in a.eval_seeds}
names = list(menu)
result = {"menu": {n: {f: getattr(menu[n], f) for f in ("mask_ratio", "sample_temp", "remask_temp", "guidance")}
                   for n in names}, "eval_seeds": a.eval_seeds, "score": {}}
for k in a.eval_seeds:
    heur = score(data[k]["heuristic"], k, None)
    rows = {f"cand:{n}": score(data[k][n], k, heur) for n in names}
    for sel_k in a.eval_seeds:  # select at sel_k, score at k
        tag = "composite" if sel_k != k else "oracle"
        for judge in list(spaces) + ["both-families"]:
            if judge == "both-families":  # mean relative per-class change against base, metric's and EfficientNet's
                rel = {n: 0.5 * (pcv[sel_k]["classifier"][n] / pcv[sel_k]["classifier"]["base"]
                                 + pcv[sel_k]["efficientnet-lite0"][n] / pcv[sel_k]["efficientnet-lite0"]["base"])
                       for n in names}
            else:
                rel = {n: pcv[sel_k][judge][n] for n in names}
            choice = [names[int(np.argmin([rel[n][c] for n in names]))] for c in range(C)]
            rows[f"{tag}:{judge}"] = {**score(compose(choice, k), k, heur), "choice": choice}
            if tag == "composite":  # one candidate for all classes, chosen the same way
                single = names[int(np.argmin([np.mean(rel[n]) for n in names]))]
                rows[f"single:{judge}"] = {**rows[f"cand:{single}"], "choice": [single] * C}
    result["score"][f"eval_seed_{k}"] = {"heuristic": heur, **rows}
    for key, r in rows.items():
        print(f"seed {k} {key:28s} FID {r['fid']:.2f} cls2 {r['fid_classifier2']:.2f} "
              f"EffNet {r['fid_efficientnet-lite0']:.1f} recall {r['recall']:.3f} acc {100 * r['class_accuracy']:.1f}",
              flush=True)
json.dump(result, open(a.out, "w"), indent=1, default=float)

"""The judge: a classifier of another architecture whose feature space every final evaluation also reports FID in,
with per-class FID and recall; and the reported iterate (``--select last`` by default)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from adanat_env.data import DEFAULT_DATA_DIR
from adanat_env.embedded import ASSET_DIR
from adanat_env.evaluation.metrics import extract_features, feature_stats, frechet_distance, per_class_metrics
from adanat_env.inputs import InputError
from adanat_env.models.classifier import ClassifierConfig, ResNetClassifier, SmallCNN, load_classifier
from agents.training import TrainConfig
from agents.training.report import judged_summary

needs_data = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed")


def _save(model: torch.nn.Module, cfg: ClassifierConfig, d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(d / "classifier.safetensors"))
    (d / "classifier.json").write_text(json.dumps({"kind": "classifier", "config": asdict(cfg)}))
    return d


def test_a_resnet_judge_loads_from_its_record_with_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    cfg = ClassifierConfig(width=4, feature_dim=8, arch="resnet")
    net = ResNetClassifier(cfg)
    with torch.no_grad():  # non-trivial batch-norm statistics: they must travel with the weights
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    net.eval()
    loaded = load_classifier(_save(net, cfg, tmp_path / "judge"))
    assert isinstance(loaded, ResNetClassifier)
    x = torch.rand(5, 1, 28, 28)
    assert torch.allclose(loaded.features(x), net.features(x)) and loaded.features(x).shape == (5, 8)
    assert [tuple(m.shape[1:]) for m in loaded.feature_maps(x)] == [(4, 28, 28), (8, 14, 14), (16, 7, 7)]
    p = loaded.label_probability(x, torch.arange(5))
    assert p.shape == (5,) and bool(((p > 0) & (p < 1)).all())
    # a record without "arch" is the metric's CNN (records written before the judge existed)
    old = ClassifierConfig(width=4, feature_dim=8)
    d = _save(SmallCNN(old), old, tmp_path / "old")
    record = json.loads((d / "classifier.json").read_text())
    del record["config"]["arch"]
    (d / "classifier.json").write_text(json.dumps(record))
    assert isinstance(load_classifier(d), SmallCNN)
    record["config"]["arch"] = "vit"
    (d / "classifier.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="arch is one of cnn, resnet"):
        load_classifier(d)


def test_the_judge_option_is_checked_before_any_work(tmp_path):
    assert TrainConfig(judge="none").judge_space() == ""
    shipped = TrainConfig().judge_space()
    assert shipped == (f"classifier:{ASSET_DIR / 'judge'}" if (ASSET_DIR / "judge").is_dir() else "")
    assert TrainConfig(data_dir=str(tmp_path)).judge_space() == ""  # your own data: no shipped judge fits it
    for bad, match in (("bogus", "--judge must be"), ("classifier", "--judge must be"),
                       (f"classifier:{tmp_path}", "no classifier in"), (f"classifier:{ASSET_DIR}", "metric's own"),
                       ("classifier:" + str(ASSET_DIR) + "/", "metric's own"),
                       ("inception", "needs --inception-weights")):
        with pytest.raises(InputError, match=match):
            TrainConfig(judge=bad).validate()
    with pytest.raises(InputError, match="metric's feature space"):
        TrainConfig(metric="efficientnet-lite0", judge="efficientnet-lite0").validate()
    cfg = ClassifierConfig(width=4, feature_dim=8, arch="resnet")
    d = _save(ResNetClassifier(cfg), cfg, tmp_path / "j")
    TrainConfig(judge=f"classifier:{d}").validate()
    with pytest.raises(InputError, match="cannot judge"):
        TrainConfig(judge=f"classifier:{d}", sample_credit=f"classifier:{d}").validate()


def test_the_summary_names_the_worst_class_in_each_space():
    res = {"heuristic": {"fid_judge": 10.0, "per_class_fid": [10.0, 20.0, math.nan], "per_class_fid_judge": [4.0, 5.0]},
           "learned": {"fid_judge": 9.0, "per_class_fid": [9.0, 23.0, 5.0], "per_class_fid_judge": [5.0, 4.0]}}
    s = judged_summary(res)
    assert s["fid_judge"] == {"heuristic": 10.0, "learned": 9.0}
    assert s["worst_class_vs_heuristic"] == pytest.approx({"metric": 0.15, "judge": 0.25})
    assert judged_summary({"learned": {"fid": 1.0}}) == {}


def test_per_class_metrics_compare_each_class_with_its_own_reals():
    rng = np.random.default_rng(0)
    ref = np.concatenate([rng.normal(0, 1, (200, 3)), rng.normal(5, 1, (200, 3))])
    ref_labels = np.repeat([0, 1], 200)
    fake = np.concatenate([rng.normal(0, 1, (100, 3)), rng.normal(8, 1, (100, 3))])
    pc = per_class_metrics(fake, np.repeat([0, 1], 100), ref, ref_labels, 3)
    assert pc["fid"][0] < 0.5 < 5.0 < pc["fid"][1] and math.isnan(pc["fid"][2])
    assert pc["recall"][0] > 0.8 > 0.2 > pc["recall"][1]


@needs_data
def test_the_final_evaluation_reports_the_judge_and_every_class_and_reports_the_last_iterate(tmp_path):
    """A tiny run with a random judge: its FID equals a direct computation on the same samples, every class has
    a FID and a recall in the metric's space, and the reported iterate is the last (the default)."""
    from adanat_env.evaluation.sampling import sample_images
    from adanat_env.schedules import heuristic_schedule
    from agents.training import Trainer

    torch.manual_seed(0)
    jcfg = ClassifierConfig(width=4, feature_dim=8, arch="resnet")
    judge = _save(ResNetClassifier(jcfg).eval(), jcfg, tmp_path / "judge")
    cfg = TrainConfig(steps=2, batch_size=8, episodes=16, minibatch=16, epochs=1, d_epochs=1, d_batch_size=8,
                      d_updates=2, d_minibatch=8, d_warmup=1, d_real_count=500, val_count=200, curve_every=0,
                      eval_samples=100, amp="none", device="cpu", seed=3, iterations=1,
                      judge=f"classifier:{judge}")
    trainer = Trainer(cfg, tmp_path / "run", log=lambda _: None)
    trainer.fit(progress=False)
    m = trainer.evaluate()
    assert m["select"] == "last" and m["selected_iteration"] == 1
    for name in ("cosine", "heuristic", "learned"):
        d = m["details"][name]
        assert len(d["per_class_fid"]) == len(d["per_class_recall"]) == len(d["per_class_fid_judge"]) == 10
        assert all(math.isfinite(v) for v in d["per_class_fid"] + d["per_class_recall"] + d["per_class_fid_judge"])
    assert set(m["fid_judge"]) == {"cosine", "heuristic", "learned"} and set(m["worst_class_vs_heuristic"]) == {"metric", "judge"}
    images, _ = sample_images(trainer.generator, heuristic_schedule(2), 2, 100, seed=cfg.seed + 12345)
    ref = np.load(next((tmp_path / "run").glob("classifier_*/ref_test_classifier.npz")))
    direct = frechet_distance(feature_stats(extract_features(load_classifier(judge).features, images)),
                              feature_stats(ref["features"].astype(np.float64)))
    assert m["fid_judge"]["heuristic"] == pytest.approx(direct, rel=1e-4)
    assert m["fid_judge"]["heuristic"] != pytest.approx(m["fid"]["heuristic"], rel=1e-2)

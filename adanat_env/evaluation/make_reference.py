"""Precompute reference statistics of a real split in a feature space (shipped for the Fashion-MNIST test split).

    python -m adanat_env.evaluation.make_reference --split test --feature-space classifier \\
        --out adanat_env/assets/fashion_mnist/fid_ref_test_classifier.npz
    python -m adanat_env.evaluation.make_reference --split test --feature-space classifier \
        --classifier-dir adanat_env/assets/fashion_mnist/judge --out adanat_env/assets/fashion_mnist/judge/fid_ref_test_classifier.npz
"""

from __future__ import annotations

import argparse
import json

from ..config import run_script
from ..data import load_idx_dataset, to_model_images
from .metrics import extract_features, feature_extractor, save_reference


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--feature-space", default="classifier")
    p.add_argument("--inception-weights", default=None)
    p.add_argument("--classifier-dir", default=None, help="another classifier for --feature-space classifier (the judge)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    data = load_idx_dataset(args.split, args.data_dir)
    fn = feature_extractor(args.feature_space, inception_weights=args.inception_weights, classifier_dir=args.classifier_dir)
    feats = extract_features(fn, to_model_images(data.images))
    save_reference(args.out, feats, args.feature_space)
    print(json.dumps({"out": args.out, "n": len(feats), "dim": feats.shape[1], "split": args.split,
                      "data_sha256": data.sha256}))


if __name__ == "__main__":
    run_script(main)

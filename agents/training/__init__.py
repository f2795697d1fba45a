"""AdaNAT training as a library: Algorithm 1 (PPO against a co-trained adversarial reward), or any registered
SB3 / sb3-contrib algorithm against any registered reward, built, run, checkpointed, resumed and evaluated.

    from agents.training import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(iterations=4, eval_samples=1000), out="runs/demo")
    trainer.fit()                      # a checkpoint after every iteration in runs/demo/checkpoint.pt
    metrics = trainer.evaluate()       # FID / KID of cosine, heuristic and learned; grids, curve, metrics.json
    trainer = Trainer.resume("runs/demo", iterations=8, d_lr=5e-4)   # continue exactly; recovery options may change

One module per step, imported only downward:

- :mod:`~agents.training.builders`: the env, the reward registry (:data:`REWARDS`), the real data and its splits,
  the metric's features.
- :mod:`~agents.training.config`: :class:`TrainConfig` (fields grouped by step), presets, resume rules.
- :mod:`~agents.training.checkpoint`: the run directory and its checkpoint.
- :mod:`~agents.training.report`: rollout diagnostics, validation FID, test evaluation, ``metrics.json``, curves.
- :mod:`~agents.training.trainer`: the loop, Algorithm 1 top to bottom: when the discriminator trains relative to
  the policy update is the table at the top of that module.
"""

from .builders import (METRICS, REWARDS, BuiltReward, build_env, build_reward, check_models, metric_features,
                       open_split, real_features, real_images, run_classifier, run_data_dir, train_split)
from .checkpoint import CHECKPOINT_FORMAT, RunDirectoryError, load_checkpoint
from .config import CHOICES, GROUPS, LEGACY_DEFAULTS, PRESETS, RESUMABLE, RETIRED, TrainConfig, saved_options
from .report import evaluate_on_test, plot_training_curve, reference_of_test_split
from .trainer import Trainer, iteration_seed

__all__ = ["TrainConfig", "Trainer", "GROUPS", "CHOICES", "PRESETS", "RESUMABLE", "LEGACY_DEFAULTS", "RETIRED",
           "saved_options", "CHECKPOINT_FORMAT", "RunDirectoryError", "load_checkpoint", "METRICS", "REWARDS",
           "BuiltReward", "build_env", "build_reward", "check_models", "metric_features", "open_split",
           "real_features", "real_images", "run_classifier", "run_data_dir", "train_split", "evaluate_on_test",
           "plot_training_curve", "reference_of_test_split", "iteration_seed"]

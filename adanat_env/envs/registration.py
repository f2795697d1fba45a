"""Environment factories and registration (``import adanat_env`` registers both ids).

- ``AdaNAT-FashionMNIST-v0``: the shipped tiny Fashion-MNIST NAT + tokenizer; no set-up.
- ``AdaNAT-ImageNet256-v0``: the official ImageNet-256 U-ViT-L + MaskGIT VQGAN. Weights from
  ``nat_checkpoint=`` / ``tokenizer_checkpoint=``, or from the directory in ``$ADANAT_IMAGENET_DIR`` holding
  ``nnet_ema.pth`` and ``vqgan_jax_strongaug.ckpt`` (the files the official AdaNAT README links as
  ``assets/nnet_ema.pth`` and ``assets/vqgan_jax_strongaug.ckpt``); ``weights="random"`` builds it with
  random weights for smoke tests and benchmarks.

No ``max_episode_steps`` is registered: episodes end with ``terminated=True`` after exactly ``steps`` steps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym

from ..embedded import load_embedded_generator
from ..generator import Generator, NATGenerator
from ..models import load_nat, load_tokenizer
from ..utils import resolve_device
from .adanat import AdaNATEnv, AdaNATVectorEnv

__all__ = ["IMAGENET_DIR_ENV", "register_envs", "make_fashion_mnist_env", "make_fashion_mnist_vector_env",
           "make_imagenet256_env", "make_imagenet256_vector_env", "imagenet256_generator"]

IMAGENET_DIR_ENV = "ADANAT_IMAGENET_DIR"
_NAT_FILE, _VQ_FILE = "nnet_ema.pth", "vqgan_jax_strongaug.ckpt"


def _fashion_generator(device: str, amp: str | None, nat_dir: str | None, tokenizer_dir: str | None) -> Generator:
    return load_embedded_generator(resolve_device(device), amp, nat_dir=nat_dir, tokenizer_dir=tokenizer_dir)


def _fashion_reward(reward_model: Any, device: Any) -> Any:
    if reward_model == "classifier":
        from rewards.prm import ClassifierReward

        return ClassifierReward(resolve_device(device))
    return reward_model


def make_fashion_mnist_env(steps: int = 8, device: str = "auto", residual: str = "heuristic", dtype: str = "float32",
                           reward_model: Any = "classifier", amp: str | None = None, nat_dir: str | None = None,
                           tokenizer_dir: str | None = None, **kwargs: Any) -> AdaNATEnv:
    """``gym.make("AdaNAT-FashionMNIST-v0", ...)``; ``reward_model="classifier"`` (default), ``None`` or a callable."""
    gen = _fashion_generator(device, amp, nat_dir, tokenizer_dir)
    return AdaNATEnv(gen, steps=steps, residual=residual, dtype=dtype,
                     reward_model=_fashion_reward(reward_model, gen.device), **kwargs)


def make_fashion_mnist_vector_env(num_envs: int = 8, steps: int = 8, device: str = "auto", residual: str = "heuristic",
                                  dtype: str = "float32", reward_model: Any = "classifier", amp: str | None = None,
                                  nat_dir: str | None = None, tokenizer_dir: str | None = None,
                                  **kwargs: Any) -> AdaNATVectorEnv:
    """``gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=B, vectorization_mode="vector_entry_point")``."""
    gen = _fashion_generator(device, amp, nat_dir, tokenizer_dir)
    return AdaNATVectorEnv(gen, num_envs=num_envs, steps=steps, residual=residual, dtype=dtype,
                           reward_model=_fashion_reward(reward_model, gen.device), **kwargs)


def imagenet256_generator(weights: str = "official", nat_checkpoint: str | None = None,
                          tokenizer_checkpoint: str | None = None, device: str = "auto", amp: str | None = None,
                          nat_preset: str = "imagenet256-L") -> Generator:
    """The ImageNet-256 generator; see module docstring for where weights come from.

    :raises FileNotFoundError: naming the expected files and where the official README publishes them.
    """
    dev = resolve_device(device)
    if weights == "random":
        return NATGenerator(load_nat(nat_preset, None, dev), load_tokenizer("maskgit-vqgan-f16", None, dev), amp=amp)
    if weights != "official":
        raise ValueError(f"weights must be 'official' or 'random', got {weights!r}")
    root = os.environ.get(IMAGENET_DIR_ENV)
    nat_path = Path(nat_checkpoint) if nat_checkpoint else (Path(root) / _NAT_FILE if root else None)
    vq_path = Path(tokenizer_checkpoint) if tokenizer_checkpoint else (Path(root) / _VQ_FILE if root else None)
    missing = [str(p) if p else name for p, name in ((nat_path, _NAT_FILE), (vq_path, _VQ_FILE)) if p is None or not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"AdaNAT-ImageNet256-v0 needs the official weights; missing: {', '.join(missing)}. Download "
            f"'{_NAT_FILE}' (AutoNAT-L / AdaNAT-L NAT) and '{_VQ_FILE}' (MAGE VQGAN), linked from the official AdaNAT "
            f"README (LeapLabTHU/AdaNAT, 'assets/'), then pass nat_checkpoint= and tokenizer_checkpoint=, or put both "
            f"in one directory and set ${IMAGENET_DIR_ENV}. For a smoke test use weights='random'.")
    return NATGenerator(load_nat(nat_preset, nat_path, dev), load_tokenizer("maskgit-vqgan-f16", vq_path, dev), amp=amp)


def make_imagenet256_env(steps: int = 8, device: str = "auto", residual: str = "heuristic", dtype: str = "float32",
                         weights: str = "official", nat_checkpoint: str | None = None,
                         tokenizer_checkpoint: str | None = None, amp: str | None = None, reward_model: Any = None,
                         **kwargs: Any) -> AdaNATEnv:
    """``gym.make("AdaNAT-ImageNet256-v0", ...)`` (reward 0 unless ``reward_model`` is given)."""
    gen = imagenet256_generator(weights, nat_checkpoint, tokenizer_checkpoint, device, amp)
    return AdaNATEnv(gen, steps=steps, residual=residual, dtype=dtype, reward_model=reward_model, **kwargs)


def make_imagenet256_vector_env(num_envs: int = 8, steps: int = 8, device: str = "auto", residual: str = "heuristic",
                                dtype: str = "float32", weights: str = "official", nat_checkpoint: str | None = None,
                                tokenizer_checkpoint: str | None = None, amp: str | None = None,
                                reward_model: Any = None, **kwargs: Any) -> AdaNATVectorEnv:
    """``gym.make_vec("AdaNAT-ImageNet256-v0", num_envs=B, vectorization_mode="vector_entry_point")``."""
    gen = imagenet256_generator(weights, nat_checkpoint, tokenizer_checkpoint, device, amp)
    return AdaNATVectorEnv(gen, num_envs=num_envs, steps=steps, residual=residual, dtype=dtype,
                           reward_model=reward_model, **kwargs)


ENV_IDS = ("AdaNAT-FashionMNIST-v0", "AdaNAT-ImageNet256-v0")


def register_envs() -> None:
    """Register both ids (idempotent)."""
    specs = {
        "AdaNAT-FashionMNIST-v0": ("make_fashion_mnist_env", "make_fashion_mnist_vector_env"),
        "AdaNAT-ImageNet256-v0": ("make_imagenet256_env", "make_imagenet256_vector_env"),
    }
    for env_id, (single, vector) in specs.items():
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=f"{__name__}:{single}", vector_entry_point=f"{__name__}:{vector}")

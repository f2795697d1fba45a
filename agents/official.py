"""Load the official AdaNAT policy checkpoints into this project's SB3 policies (ImageNet-256).

Formats understood:

- the AdaNAT training / release format: a ``torch.save`` dict with ``model`` (= ``PPO.state_dict()``: keys
  ``policy.actor.*``, ``policy.critic.*``, ``policy_old.actor.*``, ``policy_old.critic.*``), a pickled
  ``argparse.Namespace`` under ``args``, optimizer states and counters. Generation uses ``policy_old.actor``.
  The file is read with ``torch.load(weights_only=True)`` and ONLY ``argparse.Namespace`` allow-listed
  (never ``weights_only=False``): a file that needs anything else is refused before any code runs;
- a bare actor state dict (AdaGen's released ``PolicyBackbone`` files, or ``checkpoint["model"]`` saved alone).

Key mapping onto :class:`~agents.policies.AdaNATPolicy` (official ``PolicyNet`` = trunk + ``linear3``):
``actor.linear3.*`` -> ``action_net.*``, every other ``actor.<k>`` -> ``pi_features_extractor.net.<k>``;
likewise ``critic.linear3.*`` -> ``value_net.*`` and ``critic.<k>`` -> ``vf_features_extractor.net.<k>``.
The load is strict (every key, every shape) and leaves the policy untouched on any mismatch.

The official ImageNet policy was trained with ``heu=0``: build its env with ``residual="none"``.
The exploration std (``action_var``) is not in the checkpoint; set it with ``policy.set_action_std``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch

from adanat_env.checkpoint import CheckpointError, CheckpointMismatchError, read_checkpoint

__all__ = ["read_official_checkpoint", "official_to_sb3", "load_official_policy"]


def read_official_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an official policy file safely (``argparse.Namespace`` is the only allow-listed class)."""
    obj = read_checkpoint(path, allowed_globals=(argparse.Namespace,), what="official AdaNAT policy checkpoint")
    if not isinstance(obj, dict):
        raise CheckpointError(f"'{path}' does not hold a dict (got {type(obj).__name__}); not an AdaNAT policy file")
    return obj


def _split(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def official_to_sb3(ckpt: dict[str, Any], *, source: str = "policy_old", critic: bool = True) -> dict[str, torch.Tensor]:
    """Translate an official checkpoint (or bare actor state dict) to :class:`~agents.policies.AdaNATPolicy` keys.

    :param ckpt: what :func:`read_official_checkpoint` returned.
    :param source: ``"policy_old"`` (what the official generation uses) or ``"policy"``.
    :param critic: also translate the critic when present.
    """
    sd = ckpt.get("model", ckpt)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError("the checkpoint's 'model' entry is not a state dict of tensors")
    actor = _split(sd, f"{source}.actor.")
    crit = _split(sd, f"{source}.critic.") if critic else {}
    if not actor:
        if "linear3.weight" in sd or "x_embedder.weight" in sd or "dw_conv.weight" in sd:
            actor = dict(sd)  # a bare actor / AdaGen backbone state dict
        else:
            raise CheckpointError(f"no '{source}.actor.*' keys in the checkpoint (found e.g. {sorted(sd)[:3]}); "
                                  "is this an AdaNAT policy file?")
    out: dict[str, torch.Tensor] = {}
    for part, trunk, head in ((actor, "pi_features_extractor.net.", "action_net."),
                              (crit, "vf_features_extractor.net.", "value_net.")):
        for k, v in part.items():
            out[(head + k[len("linear3."):]) if k.startswith("linear3.") else trunk + k] = v
    return out


def load_official_policy(policy: torch.nn.Module, path_or_checkpoint: str | os.PathLike[str] | dict[str, Any], *,
                         source: str = "policy_old", critic: bool = True) -> dict[str, Any]:
    """Load an official policy into an :class:`~agents.policies.AdaNATPolicy` (strict, all-or-nothing).

    :param policy: the SB3 policy (e.g. ``model.policy``), built on the ImageNet-256 env's observation space.
    :param path_or_checkpoint: a file or an already-read checkpoint dict.
    :param source: ``"policy_old"`` (default, as the official generation) or ``"policy"``.
    :param critic: load the critic too when the file has one (otherwise it keeps its initialisation).
    :return: metadata: ``args`` (a dict of the pickled Namespace, if any), counters, loaded key count.
    :raises CheckpointMismatchError: keys or shapes do not fit (e.g. a 512-d S checkpoint into an L policy).
    """
    ckpt = path_or_checkpoint if isinstance(path_or_checkpoint, dict) else read_official_checkpoint(path_or_checkpoint)
    new = official_to_sb3(ckpt, source=source, critic=critic)
    own = policy.state_dict()
    # SB3 registers the actor's extractor twice (``features_extractor`` is ``pi_features_extractor``)
    new.update({k[len("pi_"):]: v for k, v in new.items() if k.startswith("pi_features_extractor.") and k[3:] in own})
    has_critic = any(k.startswith("value_net.") for k in new)
    expected = {k for k in own if k.startswith(("pi_features_extractor.", "features_extractor.", "action_net."))
                or (has_critic and k.startswith(("vf_features_extractor.", "value_net.")))}
    missing = sorted(expected - set(new))
    unexpected = sorted(set(new) - set(own))
    mismatched = [(k, tuple(new[k].shape), tuple(own[k].shape)) for k in sorted(set(new) & set(own))
                  if new[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError("the AdaNAT policy", missing, unexpected, mismatched)
    bad = [k for k, v in new.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"the official policy has NaN/inf values in {bad[:5]}; the file is corrupt")
    policy.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in new.items()}}, strict=True)
    args = ckpt.get("args")
    meta = {"args": vars(args) if isinstance(args, argparse.Namespace) else args, "loaded_keys": len(new),
            "critic": has_critic}
    for k in ("global_step", "num_trajectories", "num_agent_updates", "num_discriminator_updates"):
        if k in ckpt:
            meta[k] = ckpt[k]
    return meta

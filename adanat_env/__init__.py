"""AdaNAT gym: frozen masked-token generators, their decoding step, and Gymnasium environments.

``import adanat_env`` registers ``AdaNAT-FashionMNIST-v0``, ``AdaNAT-ImageNet256-v0``, ``AdaNAT-ImageNet512-v0`` and
``AdaNAT-CC3M256-v0`` with Gymnasium.

Sub-modules: :mod:`adanat_env.models` (U-ViT NAT, MaskGIT VQGAN, loaders), :mod:`adanat_env.decoding`
(the step math), :mod:`adanat_env.schedules` (hand-designed schedules), :mod:`adanat_env.policy` (what a
generation policy is), :mod:`adanat_env.actions` (raw actions -> step parameters), :mod:`adanat_env.generator`
(the generator interface), :mod:`adanat_env.sampler` (batched generation), :mod:`adanat_env.envs`
(environments), :mod:`adanat_env.sb3` (Stable-Baselines3 adapter), :mod:`adanat_env.wrappers`,
:mod:`adanat_env.evaluation` (FID / KID / precision-recall of a policy's samples).
"""

__version__ = "0.1.0"

try:  # registration needs gymnasium; the generator stack alone does not
    from .envs.registration import register_envs as _register_envs  # guarded: a torch-only install has no gymnasium
except ImportError:  # pragma: no cover - e.g. a GPU box with only torch
    pass
else:
    _register_envs()

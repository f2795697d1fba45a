"""RL agents for AdaNAT generation policies.

- :mod:`agents.policy_net`: the official AdaNAT policy / value network design (checkpoint-compatible trunk).
- :mod:`agents.policies`: SB3 policies on it: fixed scheduled exploration std, the non-adaptive variant, RecurrentPPO.
- :mod:`agents.registry`: ``--algo NAME`` -> PPO, A2C, TRPO, RecurrentPPO, TD3, SAC or ARS with defaults for this env.
- :mod:`agents.data_parallel`: PyTorch's DDP under SB3's PPO / A2C (torchrun; gradients averaged over ranks).
- :mod:`agents.callbacks`: the exploration-std schedule and a rollout timer (generic SB3 callbacks).
- :mod:`agents.training`: training as a library (Algorithm 1): ``TrainConfig``, ``Trainer`` (build, fit,
  checkpoint, resume, evaluate), the reward registry; :mod:`agents.training.trainer` reads as the algorithm.
- :mod:`agents.protocol`: the multi-seed protocol (arms x seeds, mean ± std).
- :mod:`agents.sb3_internals`: the only reads and writes of SB3 model state that SB3 keeps private.
- :mod:`agents.generation_policy`: a trained SB3 policy as a generation policy for the sampler and the evaluation.
- :mod:`agents.export`: a trained run as a generation policy, and its per-step mean schedule as a schedule file.
- :mod:`agents.budget`: adaptive compute from a family of learned fixed-T policies (a per-class step budget).
- :mod:`agents.search`: the CEM search of the best static schedule (the strongest non-learned baseline).
- :mod:`agents.sample`: sample with a trained policy or a budget family (``python -m agents.sample``).
- :mod:`agents.official`: load the official AdaNAT policy checkpoints (safely) into the SB3 policy.
"""

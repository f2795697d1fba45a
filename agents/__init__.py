"""RL agents for AdaNAT generation policies.

- :mod:`agents.policy_net`: the official AdaNAT policy / value network design (checkpoint-compatible trunk).
- :mod:`agents.policies`: SB3 policies on it: fixed scheduled exploration std, the non-adaptive variant, RecurrentPPO.
- :mod:`agents.registry`: ``--algo NAME`` -> PPO, A2C, TRPO, RecurrentPPO, TD3, SAC or ARS with defaults for this env.
- :mod:`agents.callbacks`: the std schedule and the discriminator co-training between rollouts (Algorithm 1), a
  rollout timer.
- :mod:`agents.trainer`: training as a library: ``TrainConfig``, ``Trainer`` (build, fit, checkpoint, resume,
  evaluate) and its builders.
- :mod:`agents.protocol`: the multi-seed protocol (arms x seeds, mean ± std).
- :mod:`agents.sb3_internals`: the only reads and writes of SB3 model state that SB3 keeps private.
- :mod:`agents.generation_policy`: a trained SB3 policy as a generation policy for the sampler and the evaluation.
- :mod:`agents.budget`: adaptive compute from a family of learned fixed-T policies (a per-class step budget).
- :mod:`agents.official`: load the official AdaNAT policy checkpoints (safely) into the SB3 policy.
"""

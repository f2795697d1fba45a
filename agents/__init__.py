"""RL agents for AdaNAT generation policies.

- :mod:`agents.policy_net`: the official AdaNAT policy / value network design (checkpoint-compatible trunk).
- :mod:`agents.policies`: SB3 policies on it: fixed scheduled exploration std, the non-adaptive variant, RecurrentPPO.
- :mod:`agents.registry`: ``--algo NAME`` -> PPO, A2C, TRPO, RecurrentPPO, TD3, SAC or ARS with defaults for this env.
- :mod:`agents.callbacks`: the std schedule and the discriminator co-training between rollouts (Algorithm 1).
- :mod:`agents.generation_policy`: a trained SB3 policy as a generation policy for the sampler and the evaluation.
- :mod:`agents.official`: load the official AdaNAT policy checkpoints (safely) into the SB3 policy.
"""

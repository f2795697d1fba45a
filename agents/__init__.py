"""RL agents for AdaNAT generation policies.

:mod:`agents.policy_net`: the official AdaNAT policy / value network design (checkpoint-compatible). The SB3
policy built on it, the fixed-std exploration schedule and the algorithm registry come with the training issue.
"""

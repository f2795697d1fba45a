"""RL agents for AdaNAT generation policies (policy networks, SB3 integration). Filled in by the training issue."""

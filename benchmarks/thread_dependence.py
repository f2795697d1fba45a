"""Whether the number of CPU threads changes the bits of a training step, and by how much.

    python benchmarks/thread_dependence.py

Runs the default policy's forward and backward pass (the embedded NAT's features, a 512-sample batch) and one
frozen-NAT forward at 1 and at 2 threads in the same process, and prints the largest difference of each result.
A non-zero difference means a run's trajectory depends on the thread count: PyTorch's CPU kernels split their
reductions by thread, so the sums are taken in another order. Thirty-six PPO updates and a co-trained
discriminator amplify a last-bit difference into another run, as a different seed would
(docs/results.md, "Thread count and run-to-run spread").
"""

from __future__ import annotations

import torch

from adanat_env.embedded import load_embedded_generator
from agents.training import TrainConfig
from agents.policy_net import PolicyTrunk


def _run(threads: int, trunk: PolicyTrunk, gen, labels: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    torch.set_num_threads(threads)
    trunk.zero_grad()
    with torch.inference_mode():
        state = gen.start(labels, 4, gen.make_rng(0))
    feats = state.features.clone()
    out = trunk(feats, torch.zeros(len(labels), dtype=torch.long))
    out.square().mean().backward()
    grad = torch.cat([p.grad.flatten() for p in trunk.parameters() if p.grad is not None])
    return {"NAT features": feats, "policy output": out.detach(), "policy gradient": grad}


def main() -> dict[str, float]:
    torch.manual_seed(0)
    gen = load_embedded_generator("cpu", amp=TrainConfig.amp)  # as the default main job runs it
    labels = torch.arange(512) % gen.num_classes
    trunk = PolicyTrunk(gen.feature_dim, (7, 7), 128)
    with torch.no_grad():  # move the zero-initialised modulations off zero, as training does
        for p in trunk.parameters():
            p.add_(0.01 * torch.randn_like(p))
    one, two = _run(1, trunk, gen, labels), _run(2, trunk, gen, labels)
    again = _run(1, trunk, gen, labels)
    out = {}
    for k in one:
        diff = float((one[k] - two[k]).abs().max())
        same = bool(torch.equal(one[k], again[k]))
        out[k] = diff
        print(f"{k:>16}: max |1 thread - 2 threads| = {diff:.3g}; 1 thread twice bit-identical: {same}")
    return out


if __name__ == "__main__":
    main()

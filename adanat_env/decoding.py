r"""One decoding step of a masked-token generator, as in the AdaNAT paper (Sec. 3.2).

Pure tensor functions, no model: given the NAT's conditional and unconditional logits on the current canvas
and the per-sample step parameters :math:`(m, \tau_1, \tau_2, w)`, produce the next canvas.

.. math::

    L &= L_c + w\,(L_c - L_u)                              && \text{classifier-free guidance} \\
    \hat x_i &\sim \mathrm{Cat}\big(\mathrm{softmax}(L_i / \tau_1)\big)   && \text{sample every position} \\
    c_i &= \log \mathrm{softmax}(L_i)[\hat x_i] + \tau_2\, g_i,\ g_i \sim \mathrm{Gumbel}(0, 1)
                                                            && \text{confidence (un-tempered)} \\
    c_i &= +\infty \text{ for positions fixed earlier}      && \text{they are never re-masked} \\
    k &= \lfloor N m \rfloor                                && \text{tokens left masked after the step}

and the :math:`k` least confident newly sampled positions are masked again.

**Deliberate departure from the official code: the progress guarantee.** The official step computes
``k = min(floor(N m), N - 1)`` and re-masks with a strict ``<`` against a cut-off, so when ``k`` is at least the
number of currently masked tokens *every* newly sampled token is re-masked and the step makes no progress (an
untrained ``heu=0`` policy with ``m = 0.5`` stalls forever). Here

- ``k`` is clamped to ``[0, n_masked - 1]``: every step fixes at least one new token (while any are masked);
- the last step (``last=True``) uses ``k = 0``: it fixes every remaining token;
- exactly ``k`` tokens are re-masked (ranks, not a cut-off value, so ties cannot change the count).

Whenever ``floor(N m) < n_masked`` and there are no ties, this is identical to the official step.

Sampling uses an inverse-CDF draw (one uniform per position), which is exact and several times faster on CPU
than ``torch.multinomial`` or the Gumbel-max trick over the full vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

__all__ = [
    "StepParams",
    "guided_logits",
    "sample_tokens",
    "token_log_prob",
    "gumbel_noise",
    "num_to_remask",
    "lowest_k_mask",
    "decoding_step",
]

_TINY = 1e-30


@dataclass(frozen=True)
class StepParams:
    """Per-sample parameters of one decoding step; each field is a (B,) float tensor.

    :param mask_ratio: m, the fraction of the N tokens left masked after the step, in [0, 1].
    :param sample_temp: tau_1, the sampling temperature (>= 0; 0 means greedy).
    :param remask_temp: tau_2, the scale of the Gumbel noise added to the confidence (>= 0).
    :param guidance: w, the classifier-free guidance scale (any finite value; 0 = purely conditional).
    """

    mask_ratio: torch.Tensor
    sample_temp: torch.Tensor
    remask_temp: torch.Tensor
    guidance: torch.Tensor

    @classmethod
    def full(
        cls,
        batch_size: int,
        mask_ratio: float,
        sample_temp: float = 1.0,
        remask_temp: float = 0.0,
        guidance: float = 0.0,
        device: torch.device | str = "cpu",
    ) -> "StepParams":
        """The same parameters for every sample of a batch."""
        f = lambda v: torch.full((batch_size,), float(v), device=device)  # noqa: E731
        return cls(f(mask_ratio), f(sample_temp), f(remask_temp), f(guidance))

    def to(self, device: torch.device | str) -> "StepParams":
        """The same parameters on ``device`` (float32), in one host->device copy when they move."""
        dev = torch.device(device)
        if all(getattr(self, f.name).device.type == dev.type and dev.index in (None, getattr(self, f.name).device.index)
               for f in fields(self)):
            return self
        return StepParams(*self.as_tensor().float().to(device).unbind(1))

    def as_tensor(self) -> torch.Tensor:
        """(B, 4) in the order (m, tau_1, tau_2, w)."""
        return torch.stack([self.mask_ratio, self.sample_temp, self.remask_temp, self.guidance], dim=1)

    def validate(self, batch_size: int) -> None:
        """Raise ``ValueError`` naming the problem if shapes or values are invalid.

        Costs one device->host sync of a single boolean.
        """
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, torch.Tensor) or v.shape != (batch_size,):
                got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise ValueError(f"StepParams.{f.name} must be a tensor of shape ({batch_size},), got {got}")
        m, t1, t2 = self.mask_ratio, self.sample_temp, self.remask_temp
        allv = self.as_tensor()
        ok = torch.isfinite(allv).all() & (m >= 0).all() & (m <= 1).all() & (t1 >= 0).all() & (t2 >= 0).all()
        if not bool(ok):
            problems = []
            for f in fields(self):
                v = getattr(self, f.name)
                if not torch.isfinite(v).all():
                    problems.append(f"{f.name} has NaN/inf at samples {torch.nonzero(~torch.isfinite(v)).flatten().tolist()[:8]}")
            if torch.isfinite(allv).all():
                if not ((m >= 0).all() and (m <= 1).all()):
                    problems.append(f"mask_ratio must lie in [0, 1] (min {m.min().item():.4g}, max {m.max().item():.4g})")
                if not (t1 >= 0).all():
                    problems.append("sample_temp must be >= 0")
                if not (t2 >= 0).all():
                    problems.append("remask_temp must be >= 0")
            raise ValueError("invalid decoding-step parameters: " + "; ".join(problems)
                             + ". Map raw policy outputs with adanat_env.actions.ActionMapping, which keeps them valid.")


def guided_logits(logits_cond: torch.Tensor, logits_uncond: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance ``L = L_c + w (L_c - L_u)`` in float32, kept finite.

    :param logits_cond: (B, N, V) conditional logits.
    :param logits_uncond: (B, N, V) logits for the empty class.
    :param guidance: (B,) scale w.
    """
    lc, lu = logits_cond.float(), logits_uncond.float()
    out = torch.lerp(lu, lc, (1.0 + guidance.float())[:, None, None])  # = lu + (1+w)(lc-lu) = lc + w(lc-lu)
    fmax = torch.finfo(torch.float32).max
    return out.nan_to_num_(nan=0.0, posinf=fmax, neginf=-fmax)


def sample_tokens(logits: torch.Tensor, temperature: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per position from ``softmax(logits / temperature)`` (inverse CDF).

    :param logits: (B, N, V) finite float32 logits.
    :param temperature: (B,) >= 0; 0 (or tiny) gives the argmax.
    :return: (B, N) long token ids.
    """
    b, n, v = logits.shape
    shifted = logits - logits.amax(dim=-1, keepdim=True)  # <= 0, the max entry exactly 0: no overflow
    probs = torch.softmax(shifted / temperature.clamp_min(_TINY)[:, None, None], dim=-1)
    cdf = probs.cumsum_(dim=-1)
    u = torch.rand((b, n, 1), generator=generator, device=logits.device, dtype=cdf.dtype) * cdf[..., -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=v - 1)


def token_log_prob(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[tokens]``, (B, N), without materialising the full log-softmax."""
    return logits.gather(-1, tokens[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """Standard Gumbel(0, 1) samples ``-log(-log U)``."""
    u = torch.rand(shape, generator=generator, device=device).clamp_(1e-20, 1.0 - 1e-7)
    return u.log_().neg_().log_().neg_()


def num_to_remask(mask_ratio: torch.Tensor, num_masked: torch.Tensor, num_tokens: int,
                  last: bool | torch.Tensor) -> torch.Tensor:
    """How many tokens stay masked after the step, with the progress guarantee.

    ``k = floor(N m)`` clamped to ``[0, num_masked - 1]``; ``0`` on the last step.

    :param last: the last step for the whole batch (a bool), or per sample (a (B,) bool tensor: a sample that
        finishes now, e.g. by its policy's stop action, fixes every remaining token).
    """
    if isinstance(last, bool) and last:
        return torch.zeros_like(num_masked)
    k = torch.floor(mask_ratio.float() * num_tokens).long()
    k = torch.minimum(k, (num_masked - 1).clamp_min(0)).clamp_min(0)
    return k if isinstance(last, bool) else k.masked_fill(last.to(k.device), 0)


def lowest_k_mask(confidence: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Boolean (B, N): True at the ``k[b]`` lowest-confidence positions of each row (exactly k, ties by index)."""
    b, n = confidence.shape
    order = confidence.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=confidence.device).expand(b, n))
    return ranks < k[:, None]


def decoding_step(
    tokens: torch.Tensor,
    logits_cond: torch.Tensor,
    logits_uncond: torch.Tensor,
    params: StepParams,
    *,
    mask_id: int,
    last: bool | torch.Tensor,
    generator: torch.Generator | None = None,
    validate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one step. Returns ``(filled, next_tokens)``.

    :param tokens: (B, N) current canvas; ``mask_id`` marks masked positions.
    :param logits_cond: (B, N, V) conditional logits on ``tokens``.
    :param logits_uncond: (B, N, V) unconditional (empty-class) logits on ``tokens``.
    :param params: per-sample :class:`StepParams`.
    :param mask_id: the mask token id.
    :param last: the final step: every remaining token is fixed (a bool for the batch, or a (B,) bool tensor
        per sample).
    :param generator: random source (seed it for reproducible generations).
    :param validate: check ``params`` (finite, in range, right shape) and raise ``ValueError`` otherwise.
    :return: ``filled`` (B, N), the canvas with every masked position sampled (no ``mask_id`` in it), and
        ``next_tokens`` (B, N), the canvas after re-masking.
    """
    b, n = tokens.shape
    if logits_cond.shape[:2] != (b, n) or logits_uncond.shape != logits_cond.shape:
        raise ValueError(f"logits {tuple(logits_cond.shape)} / {tuple(logits_uncond.shape)} do not fit tokens {tuple(tokens.shape)}")
    if validate:
        params.validate(b)
    masked = tokens == mask_id
    logits = guided_logits(logits_cond, logits_uncond, params.guidance)
    drawn = sample_tokens(logits, params.sample_temp, generator)
    filled = torch.where(masked, drawn, tokens)

    confidence = token_log_prob(logits, drawn)
    confidence = confidence + params.remask_temp.float()[:, None] * gumbel_noise((b, n), generator, tokens.device)
    fmax = torch.finfo(confidence.dtype).max
    confidence = confidence.nan_to_num_(nan=-fmax, posinf=fmax, neginf=-fmax)
    confidence = confidence.masked_fill_(~masked, float("inf"))  # fixed tokens are never re-masked

    k = num_to_remask(params.mask_ratio, masked.sum(dim=1), n, last)
    remask = lowest_k_mask(confidence, k)
    next_tokens = filled.masked_fill(remask, mask_id)
    return filled, next_tokens

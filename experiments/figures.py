"""Figures of the comparison suites (matplotlib: ``pip install -e ".[plots]"``; the core package does not need it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def _plt():  # type: ignore[no-untyped-def]
    try:
        import matplotlib  # optional: the [plots] extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the suites' figures need matplotlib: pip install -e \".[plots]\"") from e
    return plt


def image_panels(images: dict[str, str | Path], out: str | Path, title: str = "") -> None:
    """PNG image files side by side, each titled with its name (e.g. the sample grids of several rewards)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(images), figsize=(3.6 * len(images), 3.9), squeeze=False)
    for ax, (name, path) in zip(axes[0], images.items()):
        ax.imshow(np.asarray(Image.open(path).convert("L")), cmap="gray", vmin=0, vmax=255)
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _finish(plt, fig, ax, out: str | Path, xlabel: str, ylabel: str, title: str) -> None:  # type: ignore[no-untyped-def]
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def curves(series: dict[str, Sequence[tuple[Sequence[float], Sequence[float]]]], out: str | Path, *, xlabel: str,
           ylabel: str, hlines: dict[str, float] | None = None, title: str = "") -> None:
    """One line per (name, seed), the mean over seeds in bold where the seeds share x values."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, runs) in enumerate(series.items()):
        c = colors[i % len(colors)]
        for x, y in runs:
            ax.plot(x, y, color=c, alpha=0.35, lw=1)
        xs = [tuple(x) for x, _ in runs]
        if runs and all(x == xs[0] for x in xs):
            ax.plot(xs[0], np.mean([y for _, y in runs], axis=0), color=c, lw=2.2, label=f"{name} (mean of {len(runs)})")
        else:
            ax.plot([], [], color=c, lw=2, label=name)
    for j, (name, v) in enumerate((hlines or {}).items()):
        ax.axhline(v, ls="--", color="k", alpha=0.5 + 0.2 * j, lw=1)
        ax.text(ax.get_xlim()[0], v, f" {name}", va="bottom", fontsize=8)
    _finish(plt, fig, ax, out, xlabel, ylabel, title)


def quality_compute(lines: dict[str, dict[str, Sequence[float]]], out: str | Path, *, title: str = "") -> None:
    """FID against NAT evaluations per image: one line (or point set) per name, with std error bars.

    :param lines: name -> {"nfe", "nfe_std", "fid", "fid_std", optionally "labels"} (equal-length lists).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    markers = {0: "o", 1: "s", 2: "^", 3: "D"}
    for i, (name, d) in enumerate(lines.items()):
        ax.errorbar(d["nfe"], d["fid"], xerr=d.get("nfe_std"), yerr=d.get("fid_std"), marker=markers[i % 4],
                    capsize=3, lw=1.5, label=name)
        for x, y, lab in zip(d["nfe"], d["fid"], d.get("labels", [])):
            ax.annotate(lab, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    _finish(plt, fig, ax, out, "NAT evaluations per image (mean)", "FID (test split) ↓", title)


def adaptive_figure(params: np.ndarray, easy: np.ndarray, hard: np.ndarray, images: np.ndarray, out: str | Path,
                    names: Sequence[str] = ("m", "τ1", "τ2", "w"), examples: int = 8) -> None:
    """Paper Fig. 3 style: per step, the spread of each parameter over samples around its step mean (top row); mean ± std
    trajectories of easy vs hard samples (middle row); example images of each group (bottom row).

    :param params: (T, N, 4). :param easy: / :param hard: (N,) boolean masks. :param images: (N, H, W) in [0, 1].
    """
    plt = _plt()
    t = params.shape[0]
    fig = plt.figure(figsize=(14, 9.5))
    gs = fig.add_gridspec(3, 4, height_ratios=[1, 1, 0.8])
    steps = np.arange(t)
    for j, name in enumerate(names):
        ax = fig.add_subplot(gs[0, j])
        dev = [params[s, :, j] - params[s, :, j].mean() for s in range(t)]
        if max(float(np.ptp(d)) for d in dev) > 0:
            ax.violinplot(dev, positions=steps, showmedians=True, widths=0.8)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{name} − its step mean, over samples", fontsize=9)
        ax.set_xticks(steps)
        ax.set_xlabel("step")
        ax = fig.add_subplot(gs[1, j])
        for mask, label, c in ((easy, "easy", "tab:green"), (hard, "hard", "tab:red")):
            m, s = params[:, mask, j].mean(1), params[:, mask, j].std(1)
            ax.plot(steps, m, "-o", color=c, label=f"{label} ({int(mask.sum())})")
            ax.fill_between(steps, m - s, m + s, color=c, alpha=0.15)
        ax.set_title(f"{name}: easy vs hard (mean ± std)", fontsize=9)
        ax.set_xticks(steps)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    for k, (mask, label) in enumerate(((easy, "easy samples"), (hard, "hard samples"))):
        ax = fig.add_subplot(gs[2, 2 * k:2 * k + 2])
        idx = np.flatnonzero(mask)[:examples]
        ax.imshow(np.concatenate([images[i] for i in idx], axis=1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)

"""Sampling CLI: generate a class-by-class grid with a hand-designed schedule.

Examples::

    # the embedded Fashion-MNIST generator shipped in the package (no set-up, no network)
    python -m adanat_env.cli --steps 8 --schedule cosine --out grid.png

    # official ImageNet-256 checkpoints (AdaNAT README: assets/nnet_ema.pth, assets/vqgan_jax_strongaug.ckpt)
    python -m adanat_env.cli --model imagenet256 --nat imagenet256-L --nat-checkpoint assets/nnet_ema.pth \\
        --tokenizer maskgit-vqgan-f16 --tokenizer-checkpoint assets/vqgan_jax_strongaug.ckpt \\
        --classes 207 360 387 974 88 979 417 279 --per-class 4 --steps 8 --schedule heuristic --out grid.png

    # the same code path with random weights (a smoke test: the images are noise)
    python -m adanat_env.cli --model imagenet256 --random-weights --classes 0 1 --per-class 1 --steps 2 --out demo.png

    # a schedule file (adanat_env.schedules.save_schedule_file, or a fixed schedule exported by agents.export)
    python -m adanat_env.cli --schedule-file schedule.json --out scheduled.png

Trained policies (``--policy RUN_DIR``) and budget families (``--family FILE``) belong to the agents layer: sample
them with ``python -m agents.sample`` (installed: ``adanat-policy-sample``), which takes the same options.

One row per class, ``--per-class`` samples per row. Installed, the command is also ``adanat-sample``.
Errors are one line on stderr (``--debug``: the traceback): exit status 2 for bad options (checked before anything
is loaded, the ``--out`` path included), 1 when loading or sampling fails, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import torch

from .checkpoint import CheckpointError
from .embedded import load_embedded_generator
from .generator import Generator, NATGenerator
from .inputs import InputError, writable_file
from .models import NAT_PRESETS, TOKENIZER_PRESETS, load_nat, load_tokenizer
from .sampler import generate
from .policy import Policy
from .schedules import heuristic_schedule, load_schedule_file, maskgit_cosine_schedule
from .utils import resolve_device, save_grid

__all__ = ["build_parser", "load_generator", "main", "run", "sample_grid", "sample_schedule", "schedule_of"]

DEFAULT_NAT, DEFAULT_TOKENIZER = "imagenet256-L", "maskgit-vqgan-f16"  # the presets of --model imagenet256

#: where sampling with a trained policy or a budget family lives (the agents layer; this package never imports it)
POLICY_COMMAND, POLICY_SCRIPT = "python -m agents.sample", "adanat-policy-sample"
#: the options of that command this CLI refuses: dest -> (what they sample, their argument)
_MOVED = {"policy": ("trained policies", "RUN_DIR"), "family": ("budget families of trained policies", "FILE")}

#: options that only apply to one ``--model`` (argparse dest -> model)
MODEL_OPTIONS = {"nat_dir": "fashion-mnist", "tokenizer_dir": "fashion-mnist", "prompts": "fashion-mnist",
                 "nat": "imagenet256",
                 "tokenizer": "imagenet256", "nat_checkpoint": "imagenet256", "tokenizer_checkpoint": "imagenet256",
                 "random_weights": "imagenet256"}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block): ``<prog>: error: <message> (see --help)``."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line on stderr and exit with status 2.

        :param message: what is wrong with the command line.
        """
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _bounded_int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in ``[minimum, maximum]``.

    :param minimum: the smallest accepted value.
    :param maximum: the largest accepted value (``None``: no bound).
    """

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value

    return convert


def _finite_float(text: str) -> float:
    """An argparse ``type`` accepting finite floats (not nan / inf).

    :param text: the option's value.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _device(text: str) -> torch.device:
    """An argparse ``type`` resolving ``auto | cpu | cuda | cuda:N`` to an available device.

    :param text: the option's value.
    """
    try:
        device = resolve_device(text)
    except RuntimeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"'{text}' does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    return device


def _png_path(text: str) -> str:
    """An argparse ``type`` accepting a path ending in ``.png``.

    :param text: the option's value.
    """
    if Path(text).suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"the grid is written as PNG: the path must end in .png, got '{text}'")
    return text


class _MovedToAgents(argparse.Action):
    """``--policy`` / ``--family`` of the environment package's CLI: refused on sight, one line naming the command of
    the agents layer that samples trained policies (exit status 2, nothing loaded)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> NoReturn:
        flag, (what, arg) = option_string or "--" + self.dest, _MOVED[self.dest]
        parser.exit(2, f"{parser.prog}: error: {flag} samples with {what}, which live in the agents layer: run "
                       f"{POLICY_COMMAND} {flag} {arg} (installed: {POLICY_SCRIPT}) with the same options\n")


def build_parser(prog: str | None = None, description: str | None = None,
                 trained: bool = False) -> argparse.ArgumentParser:
    """The argument parser of the sampling CLI (every option's help states its default).

    :param prog: the command's name in messages (default: ``adanat-sample`` when run as that, else
        ``python -m adanat_env.cli``).
    :param description: the ``--help`` text above the options (default: this module's docstring).
    :param trained: accept ``--policy`` / ``--family`` (the agents layer's :mod:`agents.sample`, which loads them);
        without it they are refused at once with one line naming ``python -m agents.sample``.
    """
    if prog is None:
        prog = "adanat-sample" if Path(sys.argv[0]).name == "adanat-sample" else "python -m adanat_env.cli"
    p = _Parser(prog=prog, description=__doc__ if description is None else description,
                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--model", choices=["fashion-mnist", "imagenet256"], default="fashion-mnist",
                   help="fashion-mnist: the shipped embedded models (or --nat-dir/--tokenizer-dir); "
                        "imagenet256: the official architectures (--nat preset + checkpoints) (default: %(default)s)")
    p.add_argument("--nat-dir", default=None,
                   help="fashion-mnist only: directory written by experiments/train_nat.py (default: the shipped NAT)")
    p.add_argument("--tokenizer-dir", default=None,
                   help="fashion-mnist only: directory written by experiments/train_tokenizer.py "
                        "(default: the shipped tokenizer)")
    p.add_argument("--prompts", default=None,
                   help="fashion-mnist only, a text-conditioned --nat-dir (e.g. adanat_env/assets/fashion_mnist_t2i): "
                        "a prompt file of its encoder (python -m adanat_env.prompts); --classes are then prompt ids "
                        "(default: the prompt file beside the NAT)")
    p.add_argument("--nat", choices=sorted(NAT_PRESETS), default=None,
                   help=f"imagenet256 only: NAT preset (default: {DEFAULT_NAT})")
    p.add_argument("--nat-checkpoint", default=None,
                   help="imagenet256 only: NAT weights, .pth state dict or .safetensors "
                        "(default: none; required unless --random-weights)")
    p.add_argument("--tokenizer", choices=sorted(TOKENIZER_PRESETS), default=None,
                   help=f"imagenet256 only: tokenizer preset (default: {DEFAULT_TOKENIZER})")
    p.add_argument("--tokenizer-checkpoint", default=None,
                   help="imagenet256 only: tokenizer weights, .ckpt/.pth or .safetensors "
                        "(default: none; required unless --random-weights)")
    p.add_argument("--random-weights", action="store_true",
                   help="imagenet256 only: random weights for the checkpoints not given (smoke test; images are "
                        "noise) (default: off)")
    p.add_argument("--classes", type=int, nargs="+", default=None,
                   help="class ids, one grid row each (default: all classes for fashion-mnist, 0-3 for imagenet256)")
    p.add_argument("--per-class", type=_bounded_int(1), default=10,
                   help="samples per class, the grid's columns (default: %(default)s)")
    p.add_argument("--steps", type=_bounded_int(1), default=None,
                   help="decoding steps T; a schedule file or policy brings its own (default: 8)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--schedule", choices=["cosine", "heuristic"], default=None,
                     help="MaskGIT cosine schedule or the official AdaNAT heuristic schedule (default: heuristic)")
    how.add_argument("--schedule-file", default=None, metavar="FILE",
                     help="a schedule file (JSON: adanat_env.schedules.save_schedule_file, or a trained policy "
                          "exported by agents.export) (default: none)")
    if trained:
        how.add_argument("--policy", default=None, metavar="CHECKPOINT",
                         help="a trained policy: a training run directory or its checkpoint.pt; samples with its own "
                              "generator, T and mean action (the selected iterate) (default: none)")
        how.add_argument("--family", default=None, metavar="FILE",
                         help="a budget-family file (agents.budget.save_family_file): each class is sampled with the "
                              "fixed-T policy of its budget; brings its generator and steps (default: none)")
    else:  # kept as options only to point at the agents layer's command
        for dest, (what, arg) in _MOVED.items():
            p.add_argument(f"--{dest}", action=_MovedToAgents, nargs="?", default=None, metavar=arg,
                           help=f"moved to the agents layer: sample {what} with {POLICY_COMMAND} --{dest} {arg} "
                                f"(installed: {POLICY_SCRIPT}) (default: none)")
    p.add_argument("--guidance", type=_finite_float, default=None,
                   help="cosine schedule only: constant classifier-free guidance w (default: 0; the heuristic "
                        "schedule has its own)")
    p.add_argument("--seed", type=_bounded_int(0, 2**63 - 1), default=0,
                   help="random seed of the sampling (default: %(default)s)")
    p.add_argument("--device", type=_device, default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none",
                   help="autocast precision (default: %(default)s)")
    p.add_argument("--batch-size", type=_bounded_int(1), default=64,
                   help="images per generator call (default: %(default)s)")
    p.add_argument("--scale", type=_bounded_int(0), default=0,
                   help="integer upscaling of the saved grid; 0: 3 for images under 64 px, else 1 (default: %(default)s)")
    p.add_argument("--out", type=_png_path, default="grid.png", help="output PNG file (default: %(default)s)")
    p.add_argument("--debug", action="store_true",
                   help="show an error's traceback instead of its one line (default: off)")
    return p


def _check_combination(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse options that do not apply to the chosen model or schedule (``parser.error``: one line, exit 2).

    :param parser: the CLI's parser.
    :param args: the parsed options.
    """
    try:
        writable_file("--out", args.out)  # before loading or sampling anything
    except InputError as e:
        parser.error(str(e))
    given = [dest for dest, model in MODEL_OPTIONS.items() if model != args.model and getattr(args, dest) not in (None, False)]
    if given:
        names = ", ".join("--" + dest.replace("_", "-") for dest in given)
        verb = "apply" if len(given) > 1 else "applies"
        parser.error(f"{names} only {verb} to --model {MODEL_OPTIONS[given[0]]}, not --model {args.model}")
    if args.policy is not None or args.family is not None:
        given = [o for o, v in (("--model", args.model != "fashion-mnist"), ("--nat-dir", args.nat_dir),
                                ("--tokenizer-dir", args.tokenizer_dir), ("--prompts", args.prompts),
                                ("--nat-checkpoint", args.nat_checkpoint),
                                ("--tokenizer-checkpoint", args.tokenizer_checkpoint),
                                ("--random-weights", args.random_weights), ("--steps", args.steps)) if v]
        if given:
            flag = "--policy" if args.policy is not None else "--family"
            parser.error(f"{flag} samples with the run's own generator and T: drop {', '.join(given)}")
    if args.guidance is not None and args.schedule != "cosine":
        what = args.schedule or ("schedule file" if args.schedule_file else "policy" if args.policy
                                 else "family" if args.family else "heuristic")
        parser.error(f"--guidance only applies to --schedule cosine; the {what} schedule sets its own guidance")
    if args.model != "imagenet256":
        return
    missing = [o for o, v in (("--nat-checkpoint", args.nat_checkpoint), ("--tokenizer-checkpoint", args.tokenizer_checkpoint))
               if v is None]
    if args.random_weights and not missing:
        parser.error("--random-weights with both --nat-checkpoint and --tokenizer-checkpoint: no weights would be random")
    if missing and not args.random_weights:
        parser.error(f"--model imagenet256 needs {' and '.join(missing)} (official files: assets/nnet_ema.pth and "
                     "assets/vqgan_jax_strongaug.ckpt, linked from the AdaNAT README), or --random-weights for a smoke test")


def load_generator(args: argparse.Namespace) -> Generator:
    """The generator of ``--model`` (the embedded Fashion-MNIST models or the ImageNet-256 presets and checkpoints).

    :param args: the parsed, checked options.
    """
    amp = None if args.amp == "none" else args.amp
    if args.model == "fashion-mnist":
        return load_embedded_generator(args.device, amp, nat_dir=args.nat_dir, tokenizer_dir=args.tokenizer_dir,
                                       prompts=args.prompts)
    return NATGenerator(load_nat(args.nat or DEFAULT_NAT, args.nat_checkpoint, args.device),
                        load_tokenizer(args.tokenizer or DEFAULT_TOKENIZER, args.tokenizer_checkpoint, args.device),
                        amp=amp)


def schedule_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Policy, str]:
    """The hand-designed schedule of ``--schedule`` / ``--schedule-file``; sets ``args.steps`` to its T.

    :param parser: the CLI's parser (for a ``--steps`` that contradicts the schedule file).
    :param args: the parsed, checked options.
    :return: (the schedule, its name for the summary).
    """
    if args.schedule_file is not None:
        policy = load_schedule_file(args.schedule_file)
        if args.steps is not None and args.steps != policy.num_steps:
            parser.error(f"--steps {args.steps} but the schedule file has {policy.num_steps} steps")
        args.steps = policy.num_steps
        return policy, f"schedule file {args.schedule_file}"
    args.steps = args.steps or 8
    policy = (maskgit_cosine_schedule(args.steps, guidance=args.guidance or 0.0) if args.schedule == "cosine"
              else heuristic_schedule(args.steps))
    return policy, args.schedule or "heuristic"


def sample_schedule(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """Load the generator and the schedule, sample the grid and write it.

    :param parser: the CLI's parser (for out-of-range ``--classes``).
    :param args: the parsed, checked options.
    :return: a JSON-able summary of the run.
    """
    t0 = time.perf_counter()
    gen = load_generator(args)
    policy, what = schedule_of(parser, args)
    return sample_grid(parser, args, gen, policy, what, t0)


def sample_grid(parser: argparse.ArgumentParser, args: argparse.Namespace, gen: Generator, policy: Policy, what: str,
                t0: float) -> dict:
    """Sample ``args.classes`` (default: all classes, or 0-3 for more than 20) with ``policy`` in ``args.steps``
    steps and write the grid to ``args.out``.

    :param parser: the CLI's parser (for out-of-range ``--classes``).
    :param args: the parsed, checked options; ``args.steps`` set to the policy's T.
    :param gen: the generator.
    :param policy: the schedule or trained policy.
    :param what: its name for the summary (``"heuristic"``, ``"policy RUN_DIR"``, ...).
    :param t0: ``time.perf_counter()`` before loading (the summary's ``load_s``).
    :return: a JSON-able summary of the run.
    """
    if args.classes is None:
        args.classes = list(range(gen.num_classes)) if gen.num_classes <= 20 else [0, 1, 2, 3]
    bad = [c for c in args.classes if not 0 <= c < gen.num_classes]
    if bad:
        parser.error(f"--classes {' '.join(map(str, bad))} outside the model's classes 0..{gen.num_classes - 1}")
    labels = torch.tensor(args.classes, device=args.device).repeat_interleave(args.per_class)
    rng = gen.make_rng(args.seed)
    t1 = time.perf_counter()
    results = [generate(gen, chunk, policy, args.steps, rng=rng) for chunk in labels.split(args.batch_size)]
    images = [r.images.cpu() for r in results]
    nfe = float(torch.cat([r.nfe for r in results]).float().mean())
    t2 = time.perf_counter()
    scale = args.scale or (3 if gen.image_shape[-1] < 64 else 1)
    path = save_grid(torch.cat(images), args.out, nrow=args.per_class, scale=scale)
    return {"out": str(path), "images": int(labels.numel()), "steps": args.steps, "schedule": what,
            "nfe_mean": nfe, "device": str(args.device), "load_s": round(t1 - t0, 2), "generate_s": round(t2 - t1, 2)}


def run(parser: argparse.ArgumentParser, argv: list[str] | None,
        sample: Callable[[argparse.ArgumentParser, argparse.Namespace], dict] = sample_schedule) -> int:
    """Parse ``argv``, check the options, sample with ``sample`` and print its summary as one JSON line.

    :param parser: a parser from :func:`build_parser`.
    :param argv: the arguments (default: ``sys.argv[1:]``).
    :param sample: loads and samples (default: the hand-designed schedules); :mod:`agents.sample` passes one that
        also loads trained policies.
    :return: the exit status: 0, 1 (loading or sampling failed) or 130 (interrupted); bad options exit with 2.
    """
    args = parser.parse_args(argv)
    _check_combination(parser, args)
    try:
        summary = sample(parser, args)
    except (KeyboardInterrupt, torch.cuda.OutOfMemoryError, OSError, ValueError, CheckpointError) as e:
        if args.debug:
            raise
        if isinstance(e, KeyboardInterrupt):
            print(f"{parser.prog}: interrupted", file=sys.stderr)
            return 130
        message = (f"out of GPU memory; lower --batch-size (now {args.batch_size})"
                   if isinstance(e, torch.cuda.OutOfMemoryError) else " ".join(str(e).split()))
        print(f"{parser.prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the sampling CLI (hand-designed schedules; ``--policy`` / ``--family`` point at :mod:`agents.sample`).

    :param argv: the arguments (default: ``sys.argv[1:]``).
    :return: the exit status: 0, 1 (loading or sampling failed) or 130 (interrupted); bad options exit with 2.
    """
    return run(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())

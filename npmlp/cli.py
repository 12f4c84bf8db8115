"""The `npmlp` command line: one subcommand per job, each a thin layer over a module.

Bad input (files, configs, grids) ends with a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import npmlp

from . import __version__, export, hybrid, registry, report, sweep
from .config import Config, ConfigError
from .data import load_dataset
from .export import ParityError, export_fit
from .files import InputError, write_json
from .train import TrainingDiverged, check_learned, fit

# Modules that add their own subcommands through add_commands(subparsers).
COMMAND_MODULES = (hybrid, export, sweep, report, registry)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (InputError, ConfigError) as e:
        print(f"npmlp: error: {e}", file=sys.stderr)
        return 2
    except (TrainingDiverged, ParityError) as e:
        print(f"npmlp: failed: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an output folder that cannot be made or written
        print(f"npmlp: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("npmlp: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npmlp", description=npmlp.__doc__)
    parser.add_argument("--version", action="version", version=f"npmlp {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    p = sub.add_parser("train", help="train one model from a CSV and write metrics.json and model.onnx")
    p.add_argument("--data", required=True, type=Path, help="CSV with a header row, or the app's JSON")
    p.add_argument("--target", default=None, help="target column (default calling_score)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    add_config_args(p)
    p.set_defaults(func=cmd_train)
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


def hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(h) for h in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 128,64, got {text!r}")


def add_config_args(p: argparse.ArgumentParser):
    """One flag per commonly tuned Config field; omitted flags keep the Config defaults."""
    d = Config()
    p.add_argument("--hidden", type=hidden_sizes, default=d.hidden, help="hidden widths (default 128,64)")
    p.add_argument("--dropout", type=float, default=d.dropout, help=f"default {d.dropout}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"default {d.lr}")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--patience", type=int, default=d.patience, help=f"default {d.patience}")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    p.add_argument("--no-sigmoid", dest="sigmoid", action="store_false", help="linear output head")
    p.add_argument("--seed", type=int, default=d.seed, help=f"model seed (default {d.seed})")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help=f"default {d.split_seed}")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx, float16 weights (half the size)")


def config_from_args(args) -> Config:
    fields = ("hidden", "dropout", "lr", "batch_size", "epochs", "patience", "weight_decay", "sigmoid",
              "seed", "split_seed")
    return Config.from_dict({f: getattr(args, f) for f in fields})


def cmd_train(args) -> int:
    config = config_from_args(args)  # bad flags fail before any file is read
    data = load_dataset(args.data, target=args.target, unit_target=config.sigmoid)
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"{args.out}: --out must be a folder, and this is a file")
    args.out.mkdir(parents=True, exist_ok=True)  # fails now, not after training
    result = fit(data.X, data.y, config)
    try:
        check_learned(result)
    except TrainingDiverged as e:  # still written: training was what the command was for
        print(f"npmlp: warning: {e}", file=sys.stderr)
    model = export_fit(result, data, args.out / "model.onnx", fp16=args.fp16)
    model["path"] = "model.onnx"  # names beside metrics.json, so the folder can move
    if args.fp16:
        model["fp16"]["path"] = "model.fp16.onnx"
    write_json(args.out / "metrics.json", {**metrics_record(result), "onnx": model})
    m = result.metrics
    print(
        f"trained {config.hidden} in {result.seconds:.1f}s: best epoch {result.best_epoch}/{result.epochs_run}, "
        f"val MSE {m['val_mse']:.6f}, test MSE {m['test_mse']:.6f} -> {args.out}"
    )
    return 0


def metrics_record(result) -> dict:
    """What training measured, as plain JSON values."""
    return {
        "config": result.config.to_dict(),
        **result.metrics,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "steps": result.steps,
        "steps_per_epoch": result.steps_per_epoch,
        "n_params": result.model.n_params,
        "seconds": result.seconds,
        "rows": {"train": len(result.split.train), "val": len(result.split.val), "test": len(result.split.test)},
        "history": {"train_mse": result.train_mse, "val_mse": result.val_mse},
    }

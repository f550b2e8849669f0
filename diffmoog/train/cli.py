"""`diffmoog-train -c CONFIG [--set key=value ...] [--resume RUN_DIR|CKPT]`."""
from __future__ import annotations

import argparse
import sys

from diffmoog.errors import DiffmoogError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffmoog-train", description="Train a parameter encoder for a chain.")
    p.add_argument("-c", "--config", help="YAML config (e.g. configs/synth.yaml); optional with --resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key by its dotted path, e.g. --set train.steps=500 (repeatable)")
    p.add_argument("--resume", metavar="RUN_DIR|CKPT",
                   help="continue a run from experiments/<run> (its checkpoints/last) or a checkpoint folder")
    return p


def load_config(args):
    from diffmoog.train import checkpoint, config
    if args.resume and not args.config:
        state = checkpoint.read_state(checkpoint.resolve(args.resume, prefer="last"))
        raw = config.apply_overrides(state["config"], args.overrides)
        return config.from_dict(raw, source=f"{args.resume} (saved config)")
    if not args.config:
        raise DiffmoogError("give a config with -c CONFIG (or --resume RUN_DIR)")
    return config.load(args.config, args.overrides)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = load_config(args)
        from diffmoog.train.trainer import train
        run_dir = train(cfg, resume=args.resume)
    except DiffmoogError as err:
        print(f"diffmoog-train: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"run finished: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`diffmoog-train -c CONFIG [--set key=value ...] [--resume RUN_DIR|CKPT]`, `diffmoog-train --list-configs`.

CONFIG is a YAML path or a built-in config's name (`params_only`, `params_only.yaml`; an existing
path wins). Relative paths inside a config (data.*, run.output_dir, run.init_from) are relative
to the current folder, like create-data's `-o data` default.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from diffmoog.errors import ConfigError, DiffmoogError

PROG = "diffmoog-train"
# Set when the saved optimiser state restored by --resume overrides them (torch's load_state_dict).
RESUME_FIXED = ("lr", "weight_decay", "betas")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Train a parameter encoder for a chain.")
    p.add_argument("-c", "--config", help="a built-in config's name (e.g. params_only; see --list-configs) or a "
                   "YAML path (an existing path wins); optional with --resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key by its dotted path, e.g. --set train.steps=500 (repeatable)")
    p.add_argument("--resume", metavar="RUN_DIR|CKPT",
                   help="continue a run from experiments/<run> (its checkpoints/last) or a checkpoint folder")
    p.add_argument("--list-configs", action="store_true", help="list the built-in configs and exit")
    return p


def list_configs() -> str:
    from diffmoog.train import config
    known = config.builtin_configs()
    width = max((len(name) for name in known), default=0)
    return "\n".join(f"{name:<{width}}  {config.describe(path)}".rstrip() for name, path in known.items())


def load_config(args):
    from diffmoog.train import checkpoint, config
    if args.resume and not args.config:
        state = checkpoint.read_state(checkpoint.resolve(args.resume, prefer="last"))
        raw = config.apply_overrides(state["config"], args.overrides)
        return config.from_dict(raw, source=f"{args.resume} (saved config)")
    if not args.config:
        raise ConfigError("give a config with -c CONFIG (a built-in name, see --list-configs, or a YAML path; "
                          "or --resume RUN_DIR)")
    return config.load(args.config, args.overrides)


def check_resume(cfg, resume: str) -> None:
    """A resumed run keeps its saved optimiser hyperparameters: refuse a changed one (it would be ignored)."""
    from diffmoog.train import checkpoint
    folder = checkpoint.resolve(resume, prefer="last")
    saved = (checkpoint.read_state(folder).get("config") or {}).get("optim") or {}
    for key in RESUME_FIXED:
        new, old = getattr(cfg.optim, key), saved.get(key)
        if old is not None and new != old:
            raise ConfigError(f"--resume {resume}: optim.{key} is {new} here but {old} in the run; a resumed run "
                              f"continues with its saved optimiser state, so the change would be ignored: keep "
                              f"{old}, or start a new run from its weights with "
                              f"{checkpoint.new_run_command(folder)} --set optim.{key}={new}")


def preflight(cfg, resume: str | None) -> None:
    """Checks that need no training: the resume settings and every data folder the config names."""
    from diffmoog.chain import Chain
    from diffmoog.train.data import check_paths
    if resume:
        check_resume(cfg, resume)
    check_paths(cfg, Chain.load(cfg.chain), chain_arg=cfg.chain)


def run_dir_of(cfg, resume: str | None) -> Path:
    from diffmoog.train import checkpoint
    if resume:
        return checkpoint.resolve(resume, prefer="last").parent.parent
    return Path(cfg.run.output_dir) / cfg.run.name


def diverged(err: FloatingPointError, cfg, resume: str | None) -> str:
    """The one line for a non-finite loss: what happened, what is kept on disk, what to try."""
    from diffmoog.train import checkpoint
    message = " ".join(str(err).split())
    try:
        kept = checkpoint.kept_summary(run_dir_of(cfg, resume))
    except DiffmoogError:
        kept = "checkpoints written before it are kept"
    return f"training diverged: {message}; {kept} (optim.lr is {cfg.optim.lr:g}; try a lower one)"


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.list_configs:
        print(list_configs())
        return 0
    with warnings.catch_warnings():
        # A diverged model's NaN validation audio makes TensorBoard's wav encoder warn (two lines of
        # numpy) just before the one-line "training diverged" error, which says it all.
        warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning,
                                r"torch\.utils\.tensorboard")
        return _train(args)


def _train(args) -> int:
    from diffmoog.train import checkpoint
    previous, checkpoint.PROG = checkpoint.PROG, PROG  # names this tool in the loader's warning lines
    checkpoint.reset_warnings()
    try:
        return _run(args)
    finally:
        checkpoint.PROG = previous


def _run(args) -> int:
    cfg = None
    try:
        cfg = load_config(args)
        preflight(cfg, args.resume)
        from diffmoog.train.trainer import train
        run_dir = train(cfg, resume=args.resume)
    except DiffmoogError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        # The trainer stops at a non-finite loss; checkpoints are only written from finite models.
        print(f"{PROG}: error: {diverged(err, cfg, args.resume)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"run finished: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

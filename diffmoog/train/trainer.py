"""The training loop: data -> encoder -> (synth) -> weighted losses -> AdamW, with validation,
checkpoints, TensorBoard, resume and DDP. Everything it needs is built by `Run.setup`."""
from __future__ import annotations

import math
import signal
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from diffmoog import __version__
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError
from diffmoog.train import checkpoint, distributed
from diffmoog.train import config as config_mod
from diffmoog.train.data import OnTheFly, RealAudio, StepSampler, SyntheticSplit
from diffmoog.train.encoders import Encoder
from diffmoog.train.flow import FlowEncoder
from diffmoog.train.objective import SPECTRAL, ever_on
from diffmoog.train.evaluate import evaluate, summarize
from diffmoog.train.objective import Objective
from diffmoog.train.schedule import make_scheduler
from diffmoog.train.tblog import RunLog


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"run.device: '{name}' requested but CUDA is not available")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"run.device: unknown device '{name}' (auto, cpu, cuda, cuda:N)") from None


class Run:
    """One training run in `experiments/<run.name>/`."""

    def __init__(self, cfg: config_mod.Config, resume: str | Path | None = None):
        self.cfg = cfg
        if cfg.run.threads > 0:
            torch.set_num_threads(cfg.run.threads)
        self.dist = distributed.init("cuda" if cfg.run.device.startswith("cuda") or (
            cfg.run.device == "auto" and torch.cuda.is_available()) else "cpu")
        self.device = resolve_device(cfg.run.device, self.dist.local_rank)
        self.chain = Chain.load(cfg.chain)
        self.resume_dir = checkpoint.resolve(resume, prefer="last") if resume else None
        self.run_dir = (self.resume_dir.parent.parent if self.resume_dir
                        else Path(cfg.run.output_dir) / cfg.run.name)
        self._setup_data()
        self._setup_model()

    # -- setup -----------------------------------------------------------------------------
    def _setup_data(self):
        cfg, chain = self.cfg, self.chain
        if cfg.data.train:
            self.train_data = SyntheticSplit(cfg.data.train, chain)
            n_samples = self.train_data.n_samples
            if cfg.data.duration_s is not None and round(cfg.data.duration_s * chain.sample_rate) != n_samples:
                raise ConfigError(f"data.duration_s: {cfg.data.duration_s} s does not match the dataset's "
                                  f"{n_samples / chain.sample_rate:g} s items ({cfg.data.train})")
            self.duration_s = n_samples / chain.sample_rate
        else:
            self.duration_s = cfg.data.duration_s or chain.spec.duration
            self.train_data = OnTheFly(chain, cfg.run.seed, self.duration_s, self.device)
        self.note_off = self.train_data.note_off
        if cfg.data.val:
            self.val_data = SyntheticSplit(cfg.data.val, chain)
            if self.val_data.n_samples != self.train_data.n_samples:
                raise ConfigError(f"data.val: items are {self.val_data.n_samples} samples long, "
                                  f"training items {self.train_data.n_samples}")
        else:
            self.val_data = OnTheFly(chain, cfg.run.seed, self.duration_s, self.device)
        self.objective = Objective(chain, cfg.losses, cfg.data.real_weight, cfg.train.hard_categorical)
        self.flow = cfg.model.head == "flow"
        if self.flow:
            _check_flow_config(cfg, chain)
        self.real_data = self.real_val = None
        if self.objective.uses_real:
            if not cfg.data.real_train:
                raise ConfigError("data.real_train: a real-audio folder is needed when data.real_weight is set")
            self.real_data = RealAudio(cfg.data.real_train, chain.sample_rate, self.duration_s, cfg.data.real_format)
        if cfg.data.real_val:
            self.real_val = RealAudio(cfg.data.real_val, chain.sample_rate, self.duration_s, cfg.data.real_format)
        per_step = cfg.train.batch_size * self.dist.world
        if cfg.train.epochs > 0:
            if not isinstance(self.train_data, SyntheticSplit):
                raise ConfigError("train.epochs needs a dataset on disk (data.train); use train.steps")
            self.total_steps = cfg.train.epochs * math.ceil(len(self.train_data) / per_step)
        else:
            self.total_steps = cfg.train.steps

    def _setup_model(self):
        cfg = self.cfg
        torch.manual_seed(cfg.run.seed)
        model_cls = FlowEncoder if self.flow else Encoder
        self.model = model_cls.for_chain(self.chain, cfg.features, cfg.model).to(self.device)
        self.train_pitch = None
        self.objective.to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                           weight_decay=cfg.optim.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, cfg.optim, self.total_steps)
        self.use_amp = self.device.type == "cuda" and cfg.run.amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step, self.best = 0, {"metric": cfg.train.best_metric, "value": None, "step": None}
        if self.resume_dir:
            self._restore()
        elif cfg.run.init_from:
            self._init_from(cfg.run.init_from)
        elif self.dist.main and (self.run_dir / "checkpoints").exists():
            raise ConfigError(f"{self.run_dir}: run folder already has checkpoints; resume it with "
                              f"--resume {self.run_dir} or choose another run.name")
        self.ddp = (DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                            else None) if self.dist.enabled else None)

    def _init_from(self, path: str):
        """Warm start, e.g. the spectral phase of `synth` from a `params_only` encoder."""
        folder = checkpoint.resolve(path)
        state = checkpoint.read_state(folder)
        if [tuple(h) for h in state["heads"]] != [tuple(h) for h in self.model.heads_spec]:
            raise ConfigError(f"run.init_from: {folder} was trained for another chain's parameters")
        if Chain.from_dict(state["chain"]).spec.raw != self.chain.spec.raw:
            raise ConfigError(f"run.init_from: {folder} was trained on a different version of chain "
                              f"'{self.chain.name}' (parameter ranges differ)")
        from safetensors.torch import load_file
        weights = load_file(str(folder / checkpoint.MODEL_FILE))
        try:
            if self.flow and not any(key.startswith("velocity.") for key in weights):
                # A flow started from a regression encoder: its body, trunk and features; the
                # velocity field starts fresh.
                body = {f"embedder.{k}": v for k, v in weights.items() if not k.startswith("heads.")}
                missing, unexpected = self.model.load_state_dict(body, strict=False)
                missing = [k for k in missing if not k.startswith(("velocity.", "null_embedding"))]
                if missing or unexpected:
                    raise RuntimeError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
            else:
                self.model.load_state_dict(weights)
        except RuntimeError as err:
            raise ConfigError(f"run.init_from: {folder}: weights do not fit this model "
                              f"(model/features settings differ): {str(err).splitlines()[0]}") from None

    def _restore(self):
        state = checkpoint.read_state(self.resume_dir)
        training = checkpoint.read_training(self.resume_dir)
        if training is None:
            raise ConfigError(f"{self.resume_dir}: has no training state (only 'last' checkpoints resume)")
        heads = [tuple(h) for h in state["heads"]]
        if heads != [tuple(h) for h in self.model.heads_spec]:
            raise ConfigError(f"{self.resume_dir}: checkpoint was trained for chain '{state['chain'].get('name')}', "
                              f"not '{self.chain.name}'")
        if Chain.from_dict(state["chain"]).spec.raw != self.chain.spec.raw:
            raise ConfigError(f"{self.resume_dir}: chain '{self.chain.name}' changed since this run started "
                              f"(its YAML differs from the checkpoint's copy)")
        from safetensors.torch import load_file
        self.model.load_state_dict(load_file(str(self.resume_dir / checkpoint.MODEL_FILE)))
        self.optimizer.load_state_dict(training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        if self.use_amp and "scaler" in training:
            self.scaler.load_state_dict(training["scaler"])
        checkpoint.set_rng_state(state["rng"], training["rng"])
        self.step, self.best = int(state["step"]), state["best"]

    # -- checkpoints -----------------------------------------------------------------------
    def _state(self, metrics: dict | None = None) -> dict:
        rng_json, _ = checkpoint.rng_state()
        return {"step": self.step, "total_steps": self.total_steps, "best": self.best, "metrics": metrics or {},
                "config": config_mod.to_dict(self.cfg), "chain": self.chain.spec.raw,
                "chain_source": self.chain.spec.source, "heads": [list(h) for h in self.model.heads_spec],
                "duration_s": self.duration_s, "note_off": self.note_off, "rng": rng_json,
                "diffmoog_version": __version__}

    def save(self, name: str, metrics: dict | None = None):
        if not self.dist.main:
            return
        training = None
        if name == "last":
            _, rng_tensors = checkpoint.rng_state()
            training = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                        "rng": rng_tensors}
            if self.use_amp:
                training["scaler"] = self.scaler.state_dict()
        checkpoint.save(self.run_dir / "checkpoints" / name, self.model, self._state(metrics), training)

    # -- loop ------------------------------------------------------------------------------
    def train(self) -> Path:
        cfg, main = self.cfg, self.dist.main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            config_mod.dump(cfg, self.run_dir / "config.yaml")
        distributed.barrier(self.dist)
        self.log = RunLog(self.run_dir, self.step, enabled=main)
        sampler = StepSampler(len(self.train_data) if isinstance(self.train_data, SyntheticSplit) else 1,
                              cfg.train.batch_size, cfg.run.seed, self.step, self.total_steps,
                              self.dist.rank, self.dist.world)
        batches = (self.train_data.loader(sampler, cfg.data.num_workers)
                   if isinstance(self.train_data, SyntheticSplit) else self.train_data.loader(sampler))
        real_sampler = (StepSampler(len(self.real_data), cfg.train.batch_size, cfg.run.seed + 1, 0,
                                    self.total_steps, self.dist.rank, self.dist.world) if self.real_data else None)
        if self.flow and isinstance(self.train_data, SyntheticSplit) and self.train_pitch is None:
            from diffmoog.train.pitch_cache import split_pitches
            self.train_pitch = split_pitches(self.train_data, self.run_dir / "pitch", self.chain.sample_rate,
                                             progress=main and cfg.train.progress)
        if main and self.step > 0:
            tqdm.write(f"resumed {self.run_dir} at step {self.step}")
        bar = tqdm(total=self.total_steps, initial=self.step, desc=cfg.run.name, dynamic_ncols=True,
                   disable=not (main and cfg.train.progress))
        previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main else None
        tick, tick_step = time.perf_counter(), self.step
        started = tick
        try:
            for batch in batches:
                logged = self._train_step(batch, real_sampler)
                self.step += 1
                bar.update(1)
                now = time.perf_counter()
                steps_per_s = (self.step - tick_step) / max(now - tick, 1e-9)
                if logged is not None:
                    if main:
                        logged["steps_per_s"] = steps_per_s
                        self.log.scalars(self.step, "train", logged)
                    bar.set_postfix(loss=f"{logged['loss']:.4f}", steps_s=f"{steps_per_s:.2f}")
                    tick, tick_step = now, self.step
                last = self.step == self.total_steps or self._out_of_time(started)
                if self.step % cfg.train.val_every == 0 or last:
                    self.validate()
                if self.step % cfg.train.ckpt_every == 0 or last:
                    self.save("last")
                if last:
                    break
        except KeyboardInterrupt:
            if main:
                tqdm.write(f"interrupted at step {self.step}; saving checkpoints/last (resume with --resume "
                           f"{self.run_dir})")
                self.save("last")
            raise
        finally:
            bar.close()
            self.log.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            distributed.shutdown(self.dist)
        return self.run_dir

    def _out_of_time(self, started: float) -> bool:
        """The wall-time budget (train.max_minutes), agreed by all ranks so they stop together."""
        if self.cfg.train.max_minutes <= 0:
            return False
        over = float(time.perf_counter() - started > 60.0 * self.cfg.train.max_minutes)
        if distributed.mean_across({"over": over}, self.dist)["over"] > 0:
            if self.dist.main:
                tqdm.write(f"time budget of {self.cfg.train.max_minutes:g} min reached at step {self.step}")
            return True
        return False

    def _train_step(self, batch: dict, real_sampler) -> dict | None:
        cfg = self.cfg
        model = self.ddp or self.model
        model.train()
        log_now = (self.step + 1) % cfg.train.log_every == 0 or self.step == 0
        weights = self.objective.weights(self.step)
        audio = batch["audio"].to(self.device).float()
        batch_index = batch.get("index")
        batch = {"audio": audio, "params": {k: v.to(self.device) for k, v in batch["params"].items()}}
        real_audio = None
        if real_sampler is not None and weights["real"] != 0:
            items = [self.real_data.dataset[i] for i in real_sampler.indices(self.step)]
            real_audio = torch.stack([it["audio"] for it in items]).float().to(self.device)
        if self.flow:
            pitch_hz = self._pitch(audio, batch_index)
            with torch.autocast(self.device.type, enabled=self.use_amp):
                loss = model(audio, pitch_hz, target={k: v for k, v in batch["params"].items() if k != SEED_KEY})
            loss, terms = loss.float(), {"flow": (float(loss.detach()), float(loss.detach()))}
        else:
            inputs = audio if real_audio is None else torch.cat([audio, real_audio])
            with torch.autocast(self.device.type, enabled=self.use_amp):
                outputs_all = model(inputs)
            n = audio.shape[0]
            outputs = {k: v[:n].float() for k, v in outputs_all.items()}
            real_outputs = {k: v[n:].float() for k, v in outputs_all.items()} if real_audio is not None else None
            loss, terms = self.objective(outputs, batch, self.step, self.note_off, real_outputs, real_audio,
                                         log=log_now)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {self.step + 1}: {terms}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        if not log_now:
            return None
        logged = {"loss": float(loss.detach()), "lr": lr}
        for name, (raw, weighted) in terms.items():
            logged[f"{name}_raw"], logged[f"{name}_weighted"] = raw, weighted
        for name, value in weights.items():
            logged[f"weight_{name}"] = value
        return distributed.mean_across(logged, self.dist)

    def _pitch(self, audio: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        """The flow's pitch condition for a training batch: the split's cached estimates, or
        (rendering on the fly) tracked now."""
        if self.train_pitch is not None and index is not None:
            return self.train_pitch[index].to(self.device)
        from diffmoog.train.pitch_cache import track
        return track(audio, self.chain.sample_rate).to(self.device)

    def validate(self) -> dict:
        cfg, metrics = self.cfg, {}
        if self.dist.main:
            val_batches = (self.val_data.sequential(cfg.train.val_batch_size, cfg.data.max_val_items)
                           if isinstance(self.val_data, SyntheticSplit)
                           else self.val_data.sequential(cfg.train.val_batch_size, cfg.data.val_size))
            metrics, first = evaluate(self.model, self.chain, val_batches, self.device, self.note_off,
                                      keep_first=True)
            metrics = summarize(metrics)
            self.log.scalars(self.step, "val", metrics)
            if first is not None:
                self.log.audio(self.step, first["target"], first["pred"], self.chain.sample_rate,
                               cfg.train.audio_items)
            if self.real_val is not None:
                real, first = evaluate(self.model, self.chain, self.real_val.sequential(cfg.train.val_batch_size,
                                                                                       cfg.data.max_val_items),
                                       self.device, self.note_off, keep_first=True)
                self.log.scalars(self.step, "val_real", real)
                metrics.update({f"real/{k}": v for k, v in real.items()})
            self.log.flush()
            key = cfg.train.best_metric.split("/", 1)[-1]
            if key not in metrics:
                raise ConfigError(f"train.best_metric: '{cfg.train.best_metric}' is not a validation metric "
                                  f"(e.g. val/lsd, val/mrstft, val/param_mae_norm_mean)")
            value = metrics[key]
            if self.best["value"] is None or value < self.best["value"]:
                self.best = {"metric": cfg.train.best_metric, "value": value, "step": self.step}
                self.save("best", metrics)
        distributed.barrier(self.dist)
        return metrics


def _check_flow_config(cfg: config_mod.Config, chain: Chain) -> None:
    """A flow learns from labelled presets only: spectral and real-audio terms are refused, not ignored."""
    losses = [name for name in (*SPECTRAL, "chain") if ever_on(getattr(cfg.losses, name).weight)]
    if losses:
        raise ConfigError(f"losses.{losses[0]}: model.head 'flow' is trained by flow matching on labelled "
                          f"presets; spectral loss terms do not apply (set their weights to 0)")
    if ever_on(cfg.data.real_weight):
        raise ConfigError("data.real_weight: model.head 'flow' needs labelled presets; real audio has none")
    if not chain.free_params:
        raise ConfigError(f"chain {chain.name}: has no free parameters for a flow to model")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def train(cfg: config_mod.Config, resume: str | Path | None = None) -> Path:
    return Run(cfg, resume).train()



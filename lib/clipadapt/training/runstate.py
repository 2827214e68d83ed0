"""A training run's whole state in one safetensors file, so that a resumed run is the same run.

A run-state checkpoint holds what the next step depends on:

* ``model.<name>`` -- the trainable parameters (the frozen CLIP is rebuilt from its weights),
  ``buffer.<name>`` -- the module's floating-point buffers (running statistics and the like),
  ``extra.<name>`` -- state that is neither (a moving average kept as a plain attribute),
  which a method that carries :class:`~clipadapt.methods.protocol.KeepsState` hands over
  (:func:`clipadapt.methods.protocol.resume_state`) and takes back
  (:func:`~clipadapt.methods.protocol.load_resume_state`);
* ``optimizer.<param>.<key>`` -- AdamW's moments and step counts, with the param groups,
  the learning-rate schedule and the gradient scaler in the JSON header;
* ``rng.torch`` / ``rng.cuda.<i>`` / ``rng.numpy`` / ``rng.python`` -- every global random
  generator;
* the header's ``identity`` (method, variant, profile, recipe, seed: what makes two runs
  the same run), ``step`` and ``data`` (where the data order stands; it is a pure function
  of the seed and the step, see :func:`clipadapt.training.driver.step_indices`).

:func:`write` writes atomically (a temporary file, flushed and synced, then renamed), so a
process killed mid-write leaves the previous checkpoint as it was; :func:`latest` reads the
newest checkpoint of a folder that is whole and says which damaged ones it passed over.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..core import distributed
from ..core.checkpoints import CheckpointError, read_checkpoint
from ..core.files import atomic_path
from ..methods import protocol

PATTERN = "step-{:08d}.safetensors"
_STEP = re.compile(r"step-(\d{8})\.safetensors$")


# -- random generators -----------------------------------------------------------------------
def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every global generator's state as tensors and JSON."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["rng.python"] = torch.tensor(internal, dtype=torch.int64)
    meta = {"numpy": [name, int(pos), int(has_gauss), float(gauss)], "python": [version, gauss_next]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, gauss_next = meta["python"]
    random.setstate((version, tuple(int(x) for x in tensors["rng.python"].tolist()), gauss_next))


# -- optimiser -------------------------------------------------------------------------------
def _pack_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unpack_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# -- the whole state -------------------------------------------------------------------------
def capture(module: nn.Module, trainer, identity: dict, data: dict,
            extra: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and header of a checkpoint of ``trainer`` training ``module`` now, with
    ``extra`` (:func:`clipadapt.methods.protocol.resume_state` of the module)."""
    tensors = {f"model.{n}": p.detach() for n, p in module.named_parameters() if p.requires_grad}
    tensors.update({f"buffer.{n}": b for n, b in module.named_buffers() if b.is_floating_point()})
    tensors.update({f"extra.{k}": v for k, v in (extra or {}).items()})
    state = trainer.state_dict()
    opt_tensors, opt_meta = _pack_optimizer(state["optimizer"])
    rng_tensors, rng_meta = rng_state()
    tensors.update(opt_tensors)
    tensors.update(rng_tensors)
    meta = {"identity": identity, "step": state["step"], "data": data, "optimizer": opt_meta,
            "scheduler": state["scheduler"], "scaler": state["scaler"], "rng": rng_meta}
    return tensors, meta


def restore(module: nn.Module, trainer, tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, torch.Tensor]:
    """Put a checkpoint back: parameters, optimiser, schedule, scaler, step, generators;
    returns its extra state (for :func:`clipadapt.methods.protocol.load_resume_state`)."""
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    saved = {k[len("model."):] for k in tensors if k.startswith("model.")}
    if saved != set(params):
        raise CheckpointError(f"the checkpoint trains other parameters: missing {sorted(set(params) - saved)[:5]}, "
                              f"unexpected {sorted(saved - set(params))[:5]}")
    buffers = {f"buffer.{n}": b for n, b in module.named_buffers() if b.is_floating_point()}
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[f"model.{name}"])
        for name, b in buffers.items():
            if name in tensors and tensors[name].shape == b.shape:
                b.copy_(tensors[name])
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    trainer.load_state_dict({"step": meta["step"], "optimizer": _unpack_optimizer(tensors, meta["optimizer"]),
                             "scheduler": meta["scheduler"], "scaler": meta["scaler"]})
    set_rng_state(tensors, meta["rng"])
    return extra


def write(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict,
          midway: Callable[[], None] | None = None) -> Path:
    """Write a checkpoint atomically; ``midway()`` (a test's hook) runs when half the bytes
    are on disk."""
    data = safetensors_bytes({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
                             metadata={k: json.dumps(v) for k, v in meta.items()})
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            if midway is not None:
                midway()
            f.write(data[len(data) // 2:])
            f.flush()
            os.fsync(f.fileno())
    return path


def checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoints in ``folder``, newest first (temporary files ignored)."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.safetensors") if (m := _STEP.search(p.name))]
    return sorted(found, reverse=True)


def latest(folder: str | Path) -> tuple[Path | None, dict[str, torch.Tensor], dict, list[str]]:
    """The newest whole checkpoint of ``folder`` (path None if there is none) with its
    tensors and header, and a note for each newer one that could not be read."""
    passed = []
    for _, path in checkpoints(folder):
        try:
            tensors, meta = read_checkpoint(path)
            if "identity" not in meta or "step" not in meta:
                raise CheckpointError(f"checkpoint {path} is not a run-state checkpoint (no identity or step)")
        except CheckpointError as err:
            passed.append(f"skipped damaged checkpoint {path.name}: {err}")
            continue
        return path, tensors, meta, passed
    return None, {}, {}, passed


def differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """Where two identities differ, as ``key: checkpoint X, this run Y`` lines."""
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, this run {b!r}")
    return out


def clean(folder: str | Path) -> list[str]:
    """Delete the temporary files that a process killed mid-write left behind; their names."""
    gone = []
    for tmp in Path(folder).glob("step-*.safetensors.*.tmp"):
        tmp.unlink(missing_ok=True)
        gone.append(tmp.name)
    return gone


def prune(folder: str | Path, keep: int = 2) -> None:
    """Delete all but the ``keep`` newest checkpoints."""
    for _, path in checkpoints(folder)[keep:]:
        path.unlink(missing_ok=True)


# -- a run's output folder -------------------------------------------------------------------
class RunFolderError(ValueError):
    """An output folder that holds another run, or a checkpoint of another run."""


def holds_a_run(out: Path) -> bool:
    return bool(checkpoints(out / "checkpoints")) or (out / "metrics.jsonl").exists()


def read_log(path: Path, upto: int) -> list[str]:
    """The lines of a metrics log up to step ``upto`` (a torn last line is dropped)."""
    if not path.is_file():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= upto:
                kept.append(line)
        except (ValueError, KeyError):
            continue
    return kept


def rewrite_log(path: Path, lines: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines))


def start(run, out: Path, resume: bool, say: Callable) -> float:
    """Put ``run`` (a :class:`clipadapt.training.driver.Run`) back where the newest checkpoint
    of ``out`` left it, when resuming; returns the seconds it had trained. Without ``resume``
    a folder that holds a run is refused."""
    folder = out / "checkpoints"
    if not resume:  # rank 0 looks before anyone writes, and tells the others
        if distributed.broadcast_object(holds_a_run(out) if distributed.is_main() else None):
            raise RunFolderError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        return 0.0
    path, tensors, meta, passed = latest(folder) if distributed.is_main() else (None, {}, {}, [])
    for note in passed:
        say(note)
    if distributed.is_main():
        for name in clean(folder):
            say(f"removed {name}, a checkpoint whose writing was interrupted")
    # rank 0 reads the checkpoint and hands it to the others (no shared file system needed)
    path, tensors, meta = distributed.broadcast_object((str(path) if path else None, tensors, meta))
    if path is None:
        say(f"no checkpoint in {folder}: starting from step 0")
        if distributed.is_main():
            rewrite_log(out / "metrics.jsonl", [])
        return 0.0
    diff = differences(meta["identity"], run.identity())
    if diff:
        raise RunFolderError(f"checkpoint {path} belongs to another run; it differs in: " + "; ".join(diff[:8]))
    try:
        protocol.load_resume_state(run.module, restore(run.module, run.trainer, tensors, meta))
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    if distributed.is_main():
        rewrite_log(out / "metrics.jsonl", read_log(out / "metrics.jsonl", meta["step"]))
    say(f"resumed from {path} at step {meta['step']} of {run.steps}")
    return float(meta["data"].get("seconds", 0.0))


def save(run, out: Path, done: int, seconds: float, keep: int, midway: Callable[[], None] | None = None) -> None:
    """The checkpoint of ``run`` after step ``done`` (rank 0 writes; every process waits)."""
    if distributed.is_main():
        where = {"order": "step_indices(seed, step)", "seed": run.seed, "examples": run.loader.n,
                 "global_batch": run.loader.per_batch, "next_step": done, "seconds": seconds}
        tensors, meta = capture(run.module, run.trainer, run.identity(), where, protocol.resume_state(run.module))
        write(out / "checkpoints" / PATTERN.format(done), tensors, meta, midway=midway)
        prune(out / "checkpoints", keep)
    distributed.barrier()

"""Where training runs: the device, and the processes of a multi-process (multi-GPU) launch.

Hugging Face accelerate sets up the device and the process group. Launched normally, a run is one
process on the first GPU if there is one, else the CPU. Launched by ``accelerate launch
--multi_gpu --num_processes N`` (or ``torchrun --nproc_per_node N``, which on a machine without a
GPU gives N CPU processes over gloo), every process runs the same run and the trainable rungs
train data-parallel: each global batch is split across the processes, gradients are averaged
across them before every step, and floating-point buffers (BatchNorm statistics) are averaged
after every epoch, so every process holds the same weights and makes the same early-stopping
decision. The first process writes the run directory; the others write nothing.

Gradients are averaged by an explicit all-reduce rather than by wrapping the model in
DistributedDataParallel, because gradual unfreezing changes which parameters train from one
epoch to the next and DDP fixes that set when it wraps the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import torch

LAUNCH_VARIABLES = ("WORLD_SIZE", "LOCAL_RANK")  # set by torchrun and accelerate launch


@dataclass(frozen=True)
class Processes:
    index: int
    count: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.index == 0

    @property
    def distributed(self) -> bool:
        return self.count > 1


@lru_cache(maxsize=1)
def processes() -> Processes:
    """This process's place in the launch (initialises the process group once, when launched)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not launched:  # no process group to set up: skip importing accelerate
        return Processes(0, 1, torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    import atexit

    # Tear the process group down before the interpreter does: left to the C++ destructors at exit,
    # its threads can abort the process ("terminate called without an active exception").
    atexit.register(_end_process_group)
    return Processes(state.process_index, state.num_processes, torch.device(state.device))


def _end_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()  # no process leaves while another still talks to it
        finally:
            dist.destroy_process_group()


def device() -> torch.device:
    return processes().device


def shard(indices, procs: Processes | None = None):
    """This process's share of a global batch: every count-th index from its own position."""
    procs = procs or processes()
    return indices[procs.index :: procs.count] if procs.distributed else indices


def average_gradients(params: list[torch.nn.Parameter], procs: Processes | None = None) -> None:
    """All-reduce the gradients of ``params`` to their mean over the processes (one flat buffer).

    A parameter without a gradient on this process (an empty shard) counts as zero; one that has
    a gradient on no process (unused by the forward pass) keeps none, as in a single process, so
    the optimizer skips it alike."""
    procs = procs or processes()
    if not procs.distributed or not params:
        return
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    present = torch.tensor([p.grad is not None for p in params], dtype=grads[0].dtype, device=grads[0].device)
    flat = torch.cat([g.reshape(-1) for g in grads] + [present])
    dist.all_reduce(flat)
    flat /= procs.count
    offset = 0
    for i, p in enumerate(params):
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone() if flat[-len(params) + i] > 0 else None
        offset += n


def average_buffers(model: torch.nn.Module, procs: Processes | None = None) -> None:
    """Mean of every floating-point buffer (BatchNorm running statistics) over the processes."""
    procs = procs or processes()
    if not procs.distributed:
        return
    import torch.distributed as dist

    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf /= procs.count


def reduce_sum(values: list[float], procs: Processes | None = None) -> list[float]:
    """The sums over the processes of a few numbers (training loss and accuracy counts)."""
    procs = procs or processes()
    if not procs.distributed:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=procs.device)
    dist.all_reduce(t)
    return t.tolist()


def from_main(value: float, procs: Processes | None = None) -> float:
    """The first process's value of a number, on every process: the decisions that control the
    loop (early stopping) are taken once, so the processes cannot part ways."""
    procs = procs or processes()
    if not procs.distributed:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=procs.device)
    dist.broadcast(t, src=0)
    return float(t.item())


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

"""One run of VoP on a small video world, for tests/test_distributed.py: the loss and the
gradients of its first step, then a short run to the end, then the same run resumed from
its checkpoint of step 2. ``check(out, workdir)`` runs it in this process; under
``torchrun --nproc_per_node=2 tests/ddp_check.py OUT WORKDIR`` it runs data-parallel.
Rank 0 writes ``OUT/step0.safetensors`` and ``OUT/run/``, where ``first.safetensors`` holds
the weights of the run and ``final.safetensors`` those of the run resumed at step 2.
"""

import sys
from pathlib import Path

import torch

from clipadapt import profiles, reproduce
from clipadapt.core import checkpoints, distributed
from clipadapt.experiments import settings

# 8 videos and their 8 reversal twins to train on, a global batch of 8 videos (4 twin pairs):
# 2 steps an epoch, so the 3 steps cross an epoch boundary; 8 test videos and their twins,
# without near misses (what is checked is the sharding, not the ranking)
TINY = profiles.get("tiny")
SMALL = settings.of(TINY).replace(videos=settings.of(TINY).videos.replace(train_pairs=8, test_pairs=8,
                                                                            near_misses=0))


def check(out: Path, workdir: Path) -> None:
    quiet = dict(eval_every=3, save_every=2, progress=False, say=lambda *a: None)
    run = reproduce.prepare("VoP", None, TINY, steps=3, workdir=workdir, device="cpu", settings=SMALL,
                            budgets={"video_batch": 8})
    loss = run.trainer.loss_fn(run.batch(0))
    loss.backward()
    grads = {f"grad.{n}": p.grad.clone() for n, p in run.module.named_parameters() if p.requires_grad}
    run.trainer.optimizer.zero_grad(set_to_none=True)
    loss = torch.tensor([distributed.mean(loss)])
    if distributed.is_main():
        checkpoints.save_checkpoint(out / "step0.safetensors", {"loss": loss, **grads},
                                    {"world": distributed.world(), "batch": len(run.batch(0)[1])})
    reproduce.train_and_evaluate(run, out / "run", **quiet)
    # resume the finished run from its checkpoint of step 2 (rank 0 reads it and hands it
    # over): step 3 again, and the same weights as the first time
    if distributed.is_main():
        (out / "run" / "final.safetensors").rename(out / "run" / "first.safetensors")
    distributed.barrier()
    reproduce.train_and_evaluate(run, out / "run", resume=True, **quiet)


def uneven_gather(out: Path, sizes=(4, 2)) -> None:
    """Uneven shards (``sizes`` rows per process, as when a video could not be read): the
    gathered contrastive loss and its gradient, averaged as DDP does, against one process
    on all rows; and an evaluation sharded over the processes. Needs a process group."""
    from clipadapt.core import losses

    rank, world = distributed.rank(), distributed.world()
    torch.manual_seed(0)
    weight = torch.randn(6, 4, requires_grad=True)
    x, y = torch.randn(sum(sizes), 6), torch.randn(sum(sizes), 6)
    mine = slice(sum(sizes[:rank]), sum(sizes[:rank + 1]))
    loss = losses.clip_loss(distributed.gather_with_grad(x[mine] @ weight),
                            distributed.gather_with_grad(y[mine] @ weight), 10.0)
    loss.backward()
    torch.distributed.all_reduce(weight.grad)
    weight.grad /= world
    encoded = distributed.encode_sharded(lambda r: torch.tensor(list(r)) * 2.0, range(7), lambda f, i: f(i))
    if rank == 0:
        alone = weight.detach().clone().requires_grad_(True)
        reference = losses.clip_loss(x @ alone, y @ alone, 10.0)
        reference.backward()
        torch.save({"loss": (loss.item(), reference.item()), "grad": (weight.grad, alone.grad),
                    "encoded": encoded}, out / "uneven.pt")


if __name__ == "__main__":
    torch.set_num_threads(1)
    check(Path(sys.argv[1]), Path(sys.argv[2]))
    if distributed.active():
        uneven_gather(Path(sys.argv[1]))
        torch.distributed.destroy_process_group()

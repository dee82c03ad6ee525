"""Two-process (gloo, CPU) training step: the gathered contrastive loss and DDP-averaged gradients equal those of
one process over the same global batch."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from modeling_fixtures import text_batch, tiny_model, video_batch

GLOBAL_TEXTS = [6, 2, 4, 1]
GLOBAL_FRAMES = [4, 2, 1, 3]


def _global_batch():
    return (*text_batch(GLOBAL_TEXTS), *video_batch(GLOBAL_FRAMES))


def _worker(rank: int, world_size: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = tiny_model().double().train()
        per_rank = len(GLOBAL_TEXTS) // world_size
        local = [x[rank * per_rank : (rank + 1) * per_rank] for x in _global_batch()]
        local[2] = local[2].double()
        out = model(*local, return_loss=True)
        out.loss.backward()
        grads = {}
        for name, param in model.named_parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)  # what DDP does: the mean over ranks
                grads[name] = param.grad / world_size
        if rank == 0:
            torch.save({"loss": out.loss.detach(), "logits": out.logits_per_text.detach(), "grads": grads}, out_file)
    finally:
        dist.destroy_process_group()


def test_two_process_step_equals_one_process_global_batch(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "out.pt")), nprocs=2, join=True)
    result = torch.load(tmp_path / "out.pt")

    model = tiny_model().double().train()
    batch = list(_global_batch())
    batch[2] = batch[2].double()
    out = model(*batch, return_loss=True)
    out.loss.backward()
    torch.testing.assert_close(result["logits"], out.logits_per_text.detach())
    torch.testing.assert_close(result["loss"], out.loss.detach())
    expected = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert result["grads"].keys() == expected.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(result["grads"][name], grad, rtol=1e-7, atol=1e-10, msg=name)

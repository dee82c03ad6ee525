"""glccl_hf.evaluation.distributed: the row shards of each process and their gather (the two-process evaluation
itself runs in test_training.py::test_two_processes_match_one_process_over_the_global_batch)."""

from __future__ import annotations

import pytest
import torch

from glccl_hf.evaluation.distributed import gather_rows, shard_rows


class FakeProcesses:
    """`world_size` processes in one: `gather` concatenates every rank's shard of `full` (as each would send it)."""

    def __init__(self, world_size: int, rank: int, full: torch.Tensor) -> None:
        self.num_processes, self.process_index, self.full = world_size, rank, full

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        assert torch.equal(tensor, self.full[shard_rows(len(self.full), self.num_processes, self.process_index)])
        shards = [self.full[shard_rows(len(self.full), self.num_processes, r)] for r in range(self.num_processes)]
        return torch.cat(shards)


@pytest.mark.parametrize("total, world_size", [(1, 1), (7, 1), (7, 2), (7, 3), (6, 3), (2, 4), (1, 3)])
def test_shards_are_equal_contiguous_and_cover_every_row_once(total, world_size):
    shards = [shard_rows(total, world_size, rank) for rank in range(world_size)]
    assert len({len(shard) for shard in shards}) == 1 and len(shards[0]) >= 1
    for shard in shards:
        assert shard == sorted(shard) and all(0 <= row < total for row in shard)
    concatenated = [row for shard in shards for row in shard]
    assert concatenated[:total] == list(range(total))
    assert set(concatenated[total:]) <= {total - 1}  # the padding repeats the last row


@pytest.mark.parametrize("total, world_size", [(5, 1), (7, 2), (7, 3), (2, 4)])
def test_gather_gives_back_every_row_in_order_on_every_process(total, world_size):
    full = torch.arange(total * 3, dtype=torch.float32).reshape(total, 3)
    for rank in range(world_size):
        processes = FakeProcesses(world_size, rank, full)
        local = full[shard_rows(total, world_size, rank)]
        assert torch.equal(gather_rows(processes, local, total), full)

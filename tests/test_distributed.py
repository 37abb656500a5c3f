"""compat.distributed: which process is rank zero before torch.distributed starts, and the refused strategies."""

from __future__ import annotations

import pytest
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

from compat.distributed import global_rank, is_rank_zero, strategy_problem

LAUNCHER_VARIABLES = ('RANK', 'LOCAL_RANK', 'NODE_RANK', 'GROUP_RANK', 'SLURM_PROCID')


@pytest.mark.parametrize('env, rank', [
    ({}, 0),
    ({'RANK': '3', 'LOCAL_RANK': '0'}, 3),                    # torchrun: the global rank wins
    ({'LOCAL_RANK': '1'}, 1),                                 # Lightning's own launcher on one machine
    ({'LOCAL_RANK': '0', 'NODE_RANK': '1'}, -1),              # its local rank 0 on the second machine
    ({'LOCAL_RANK': '0', 'GROUP_RANK': '2'}, -1),
    ({'SLURM_PROCID': '5'}, 5),                               # srun
    ({'SLURM_PROCID': '0', 'LOCAL_RANK': '1'}, 1),            # Lightning's children inside one SLURM task
])
def test_global_rank_from_the_launchers_environment(monkeypatch, env, rank):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert global_rank() == rank
    assert is_rank_zero() == (rank == 0)


@pytest.mark.parametrize('strategy', ['fsdp', 'fsdp_cpu_offload', FSDPStrategy()])
def test_fsdp_is_refused_with_the_reason(strategy):
    assert 'needs CUDA GPUs' in strategy_problem(strategy)


@pytest.mark.parametrize('strategy', ['auto', 'ddp', 'ddp_find_unused_parameters_true', DDPStrategy(), None])
def test_other_strategies_pass(strategy):
    assert strategy_problem(strategy) is None

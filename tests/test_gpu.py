"""GPU behaviour: device mapping, GPU-written checkpoints on the CPU and back, mixed precision."""

from __future__ import annotations

import sys
import zipfile

import lightning
import numpy as np
import pytest
import torch

from compat.devices import lightning_devices
from lernomatic.train.trainer import Trainer

from conftest import REPO, TEST_DATA
from helpers import state_dicts_equal

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU; none on this machine')

GPU_WRITTEN = TEST_DATA / 'gpu_written_ck.pkl'


def test_device_id_maps_to_lightning_devices():
    assert lightning_devices(None, None, -1) == ('cpu', 1)
    assert lightning_devices(None, None, 1) == ('gpu', [1])
    assert lightning_devices('gpu', 2, -1) == ('gpu', 2)
    assert lightning_devices(None, 2, -1) == ('auto', 2)


def test_gpu_written_checkpoint_loads_on_cpu(tmp_path):
    """The file was saved by a trainer on an H100 (tools/make_gpu_checkpoint.py): its tensors name cuda:0."""
    archive = zipfile.ZipFile(GPU_WRITTEN)
    pickled = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    assert b'cuda:0' in pickled
    trainer = Trainer(None, verbose=False, num_workers=0, logger=False, save_hist=False,
                      checkpoint_dir=str(tmp_path))
    trainer.load_checkpoint(str(GPU_WRITTEN))
    assert all(p.device.type == 'cpu' for p in trainer.model.net.parameters())
    state = trainer.optimizer.state_dict()['state'][0]
    assert state['exp_avg'].device.type == 'cpu' and state['step'].item() == 4
    x = torch.randn(32, 4)
    trainer.set_train_dataset(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()))
    trainer.set_num_epochs(2)
    trainer.train()
    assert trainer.optimizer.state_dict()['state'][0]['step'].item() == 4 + len(trainer.train_loader)


@pytest.mark.gpu
@needs_gpu
def test_device_id_trains_on_that_gpu(make_trainer, expected):
    trainer = make_trainer(device_id=0)
    assert trainer.device == torch.device('cuda:0')
    assert next(trainer.model.net.parameters()).device.type == 'cuda'
    trainer.train()
    assert trainer.device.type == 'cuda'
    assert trainer.get_loss_history() == pytest.approx(expected['loss_history'], rel=1e-3, abs=1e-4)
    assert trainer.get_acc_history().tolist() == pytest.approx(expected['acc_history'], abs=0.02)


@pytest.mark.gpu
@needs_gpu
def test_checkpoint_moves_between_gpu_and_cpu(make_trainer, tmp_path):
    gpu = make_trainer(device_id=0, num_epochs=1)
    gpu.train()
    fname = str(tmp_path / 'gpu.pkl')
    gpu.save_checkpoint(fname)
    cpu = Trainer(None, verbose=False)
    cpu.load_checkpoint(fname)
    assert cpu.optimizer.state[next(cpu.model.net.parameters())]['exp_avg'].device.type == 'cpu'
    assert state_dicts_equal(cpu.get_model_params(), gpu.get_model_params())
    cpu_file = str(tmp_path / 'cpu.pkl')
    cpu.save_checkpoint(cpu_file)
    back = Trainer(None, verbose=False, device_id=0)
    back.load_checkpoint(cpu_file)
    param = next(back.model.net.parameters())
    assert back.optimizer.state[param]['exp_avg'].device == param.device


@pytest.mark.gpu
@needs_gpu
def test_16_mixed_refuses_a_plain_backward_in_a_hand_written_loop(make_trainer):
    from compat.errors import ConfigError

    from legacy_trainers import LegacyClassifierTrainer
    with pytest.raises(ConfigError, match=r'self\.backward\(loss\)'):
        make_trainer(LegacyClassifierTrainer, device_id=0, precision='16-mixed', num_epochs=1).train()
    trainer = make_trainer(LegacyClassifierTrainer, device_id=0, precision='16-mixed', num_epochs=2,
                           use_backward_helper=True)
    trainer.train()
    assert trainer.seen_dtypes == {torch.float16} and trainer.get_acc_history()[-1] > 0.4


@pytest.mark.gpu
@needs_gpu
def test_hand_written_loops_on_the_gpu(make_trainer):
    from legacy_trainers import LegacyClassifierTrainer
    trainer = make_trainer(LegacyClassifierTrainer, device_id=0, precision='bf16-mixed')
    trainer.train()
    assert set(trainer.seen_devices) == {'cuda:0'} and trainer.seen_dtypes == {torch.bfloat16}
    assert next(trainer.model.net.parameters()).device.type == 'cuda'


@pytest.mark.gpu
@needs_gpu
def test_bf16_mixed_on_gpu(make_trainer):
    trainer = make_trainer(device_id=0, precision='bf16-mixed', num_epochs=2)
    trainer.train()
    assert trainer.acc_iter == 2 and all(v > 0 for v in trainer.get_loss_history())


needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 CUDA GPUs')


@pytest.mark.gpu
@needs_two_gpus
@pytest.mark.parametrize('mode', ['default', 'classifier', 'gan'])
def test_two_gpus_nccl_end_identical(tmp_path, mode):
    from test_ddp import run_two_ranks
    rank0, rank1 = run_two_ranks(mode, tmp_path, accelerator='gpu')
    for name in rank0['state']:
        assert state_dicts_equal(rank0['state'][name], rank1['state'][name]), name
    assert rank0['device'] == 'cuda:0' and rank1['device'] == 'cuda:1'
    assert [p for p in (tmp_path / 'rank1').rglob('*') if p.is_file()] == []


def bench_hand_written_trainer() -> type:
    """The hand-written `train_epoch` the benchmarks time (records nothing, so it makes no sync of its own)."""
    if str(REPO / 'bench') not in sys.path:
        sys.path.insert(0, str(REPO / 'bench'))
    from hand_written import HandWrittenTrainer
    return HandWrittenTrainer


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize('style', ['default', 'hand_written', 'cuda_graph'])
def test_training_steps_make_no_host_sync(make_trainer, fixture_data, style):
    """Every step away from epoch ends and the graph capture, print_every steps included (their loss is copied
    to the host without a wait, with the TensorBoard logger on), runs with CUDA's sync debug mode 'error'."""
    first_checked = 5 if style == 'cuda_graph' else 1  # capturing the graph synchronises, once

    class SyncDetector(lightning.Callback):
        checked = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if first_checked <= batch_idx < trainer.num_training_batches - 1:
                torch.cuda.set_sync_debug_mode('error')

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if torch.cuda.get_sync_debug_mode():
                torch.cuda.set_sync_debug_mode('default')
                SyncDetector.checked += 1

    trainer_class = bench_hand_written_trainer() if style == 'hand_written' else Trainer
    trainer = make_trainer(trainer_class, device_id=0, print_every=7, callbacks=[SyncDetector()],
                           train_dataset=fixture_data.make(800, 11), cuda_graph=style == 'cuda_graph')
    try:
        trainer.train()
    finally:
        torch.cuda.set_sync_debug_mode('default')
    assert SyncDetector.checked > 100
    if style != 'hand_written':
        assert trainer.loss_iter == 120
        assert np.all(trainer.get_loss_history() > 0)  # values gathered at epoch ends, none lost

"""In-memory data on the device: the DataLoader's batches, in its order, and the run's numbers unchanged."""

from __future__ import annotations

import logging

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from compat.loop.device_data import DeviceTensorLoader, device_data_refusal

import extra_nets
from conftest import TEST_DEVICE
from helpers import state_dicts_equal
from noisy_data import NoisyDataset


@pytest.mark.parametrize('shuffle, drop_last', [(True, True), (True, False), (False, False)])
def test_the_batches_of_the_dataloader_in_its_order(fixture_data, shuffle, drop_last):
    loader = DataLoader(fixture_data.make(50, 3), batch_size=8, shuffle=shuffle, drop_last=drop_last)
    served = DeviceTensorLoader(loader, TEST_DEVICE)
    assert len(served) == len(loader) and served.dataset is loader.dataset and served.batch_size == 8
    for epoch in range(2):
        torch.manual_seed(epoch)
        theirs = [tuple(t.to(TEST_DEVICE) for t in batch) for batch in loader]
        after_theirs = torch.get_rng_state()
        torch.manual_seed(epoch)
        ours = [tuple(batch) for batch in served]
        assert torch.equal(torch.get_rng_state(), after_theirs)  # the same draws from the global generator
        assert len(ours) == len(theirs)
        for mine, reference in zip(ours, theirs, strict=True):
            assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(mine, reference, strict=True))


def test_which_loaders_qualify(fixture_data):
    data = fixture_data.make(20, 1)
    assert device_data_refusal(DataLoader(data, batch_size=4), TEST_DEVICE) is None

    class Marked(torch.utils.data.Dataset):
        lernomatic_in_memory = True

        def __init__(self):
            self.tensors = data.tensors

        def __len__(self):
            return 20

        def __getitem__(self, index):
            return tuple(t[index] for t in self.tensors)

    class Augmented(TensorDataset):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return x + torch.randn_like(x), y

    assert device_data_refusal(DataLoader(Marked(), batch_size=4), TEST_DEVICE) is None
    assert 'not a TensorDataset' in device_data_refusal(DataLoader(NoisyDataset(data), batch_size=4), TEST_DEVICE)
    assert 'not a TensorDataset' in device_data_refusal(DataLoader(Augmented(*data.tensors), batch_size=4),
                                                        TEST_DEVICE)  # a subclass may do anything per sample
    assert 'collate_fn' in device_data_refusal(DataLoader(data, batch_size=4, collate_fn=lambda b: b), TEST_DEVICE)
    sampler = torch.utils.data.WeightedRandomSampler([1.0] * 20, 20)
    assert 'sampler' in device_data_refusal(DataLoader(data, batch_size=4, sampler=sampler), TEST_DEVICE)


def run(make_trainer, fixture_data, tmp_path, on_device, num_workers):
    torch.manual_seed(3)
    trainer = make_trainer(model=extra_nets.DropoutMLPModel(), shuffle=True, num_workers=num_workers,
                           train_dataset=fixture_data.make(200, 11), data_on_device=on_device, save_every=5,
                           checkpoint_dir=str(tmp_path / str(on_device)))
    trainer.train()
    return trainer


@pytest.mark.parametrize('num_workers', [0, 1])
def test_the_run_is_the_same_with_and_without(make_trainer, fixture_data, tmp_path, num_workers, caplog):
    """Shuffled, validated, with dropout: histories and weights equal whether batches come from the device."""
    with caplog.at_level(logging.DEBUG, logger='lernomatic'):
        on = run(make_trainer, fixture_data, tmp_path, True, num_workers)
    assert any('train data kept on' in r.getMessage() for r in caplog.records)  # the device path did run
    off = run(make_trainer, fixture_data, tmp_path, False, num_workers)
    assert on.get_loss_history().tolist() == off.get_loss_history().tolist()
    assert on.get_val_loss_history().tolist() == off.get_val_loss_history().tolist()
    assert on.get_acc_history().tolist() == off.get_acc_history().tolist()
    assert state_dicts_equal(on.get_model_params(), off.get_model_params())


def placement_messages(records):
    return [r for r in records if ' data kept on ' in r.getMessage() or ' data stays on the host' in r.getMessage()]


def test_said_once_where_it_is_news_and_off_with_the_option(make_trainer, fixture_data, tmp_path, caplog):
    """On a GPU the place of the data is news and said once (INFO); on the CPU nothing moves: DEBUG only."""
    with caplog.at_level(logging.DEBUG, logger='lernomatic'):
        trainer = make_trainer(verbose=True, num_epochs=2)
        trainer.train()
        trainer.set_num_epochs(3)
        trainer.train()
        make_trainer(verbose=True, num_epochs=1, data_on_device=False).train()
    said = placement_messages(caplog.records)
    assert len(said) == 1 and said[0].getMessage().startswith(f'train data kept on {TEST_DEVICE}')
    assert 'data_on_device=False' in said[0].getMessage()
    assert said[0].levelno == (logging.INFO if TEST_DEVICE.type == 'cuda' else logging.DEBUG)


def test_a_gpu_run_says_why_its_data_stays_on_the_host(make_trainer, fixture_data, caplog):
    """A dataset that cannot be kept on the device: on a GPU the reason is said once; on the CPU not at INFO."""
    with caplog.at_level(logging.INFO, logger='lernomatic'):
        make_trainer(verbose=True, num_epochs=1, train_dataset=NoisyDataset(fixture_data.make(200, 11))).train()
    said = [r.getMessage() for r in placement_messages(caplog.records)]
    if TEST_DEVICE.type == 'cuda':
        assert said == [f'train data stays on the host, each batch copied to {TEST_DEVICE}: its dataset is not a '
                        'TensorDataset (or marked lernomatic_in_memory with tensors)']
    else:
        assert said == []

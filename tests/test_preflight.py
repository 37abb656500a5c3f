"""The first-batch check: common set-up mistakes as one clear error before the first epoch, and no trace otherwise."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset, TensorDataset

from compat.errors import ConfigError
from compat.loop import session
from compat.loop.preflight import check_first_batch, describe
from lernomatic.models import common
from lernomatic.train.trainer import Trainer


class NormDropNet(nn.Module):
    """BatchNorm (statistics a train-mode forward would move), dropout (a mask it would draw), and a frozen norm."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.BatchNorm1d(12)
        self.body = nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))

    def forward(self, x):
        return self.body(self.frozen(x))


class NormDropModel(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.net = NormDropNet()
        self.import_path = self.module_import_path = 'test_preflight'
        self.model_name, self.module_name = 'NormDropModel', 'NormDropNet'


class AugmentedData(Dataset):
    """Samples with noise from torch, numpy and Python's `random`, as augmenting datasets draw it."""

    def __init__(self, base: TensorDataset) -> None:
        self.base = base
        self.reads = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        self.reads += 1
        data, label = self.base[index]
        noise = 0.1 * torch.randn(data.shape) + float(np.random.uniform(-0.05, 0.05)) + random.uniform(-0.05, 0.05)
        return data + noise, label


class Listed(Dataset):
    """A plain map-style dataset over (data, label) pairs: not a TensorDataset."""

    def __init__(self, pairs: list) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        return self.pairs[index]


def labelled(n: int, labels: torch.Tensor | None = None, features: int = 12) -> TensorDataset:
    generator = torch.Generator().manual_seed(5)
    data = torch.randn(n, features, generator=generator)
    return TensorDataset(data, labels if labels is not None else torch.randint(0, 3, (n,), generator=generator))


def raised(trainer: Trainer) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        trainer.train()
    return caught.value


# ---- nothing changes when the check passes
def test_the_check_draws_no_random_number_and_leaves_the_model_as_it_was(make_trainer, fixture_data):
    data = AugmentedData(fixture_data.make(200, 11))
    trainer = make_trainer(model=NormDropModel(), train_dataset=data)
    net = trainer.model.get_net()
    net.frozen.eval()  # the user's own choice, which the check must keep
    weights = {key: value.clone() for key, value in net.state_dict().items()}
    flags = [module.training for module in net.modules()]
    generators = torch.get_rng_state(), np.random.get_state(), random.getstate()

    check_first_batch(trainer)

    assert data.reads == 20  # it read the first batch (drawing noise) ...
    assert torch.equal(torch.get_rng_state(), generators[0])  # ... and put every generator back
    numpy_state = np.random.get_state()
    assert np.array_equal(numpy_state[1], generators[1][1]) and numpy_state[2:] == generators[1][2:]
    assert random.getstate() == generators[2]
    assert all(torch.equal(value, weights[key]) for key, value in net.state_dict().items())  # BatchNorm stats too
    assert [module.training for module in net.modules()] == flags
    assert all(p.grad is None for p in net.parameters())


def test_a_run_gives_exactly_the_numbers_it_gives_without_the_check(make_trainer, fixture_data):
    def twin() -> Trainer:
        torch.manual_seed(2)  # the same initial weights
        trainer = make_trainer(model=NormDropModel(), train_dataset=AugmentedData(fixture_data.make(200, 11)),
                               shuffle=True, num_epochs=2, logger=False)
        torch.manual_seed(3)  # the data's noise, the order and the dropout masks all come from here on
        np.random.seed(3)
        random.seed(3)
        return trainer

    checked = twin()
    checked.train()
    unchecked = twin()
    session.fit_epochs(unchecked)  # what train() runs after the check
    for name in ('loss_history', 'val_loss_history', 'acc_history'):
        assert np.array_equal(getattr(checked, name), getattr(unchecked, name)), name
    assert checked.train_dataset.reads == unchecked.train_dataset.reads + 20
    for key, value in checked.model.get_net().state_dict().items():
        assert torch.equal(value, unchecked.model.get_net().state_dict()[key]), key


def test_a_subclass_with_its_own_train_epoch_is_not_checked(make_trainer):
    class WeightedTrainer(Trainer):
        """Batches of (data, target, weight): the default step could not unpack them, this loop does."""

        def train_epoch(self) -> None:
            for data, target, weight in self.train_loader:
                loss = (nn.functional.cross_entropy(self.model.forward(data), target, reduction='none') * weight).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self.loss_history[self.loss_iter] = loss.item()
                self.loss_iter += 1

    base = labelled(200)
    trainer = make_trainer(WeightedTrainer, train_dataset=TensorDataset(*base.tensors, torch.ones(200)),
                           val_dataset=None, num_epochs=1)
    trainer.train()
    assert trainer.loss_iter == 10


# ---- the mistakes
def test_a_sample_shape_the_model_does_not_take_fails_before_the_first_epoch(make_trainer, tmp_path):
    trainer = make_trainer(train_dataset=labelled(200, features=10))
    with pytest.raises(ConfigError) as caught:
        trainer.train()
    message = str(caught.value)
    for text in ('train_dataset (TensorDataset, 200 samples)', 'first batch [float32[20, 10], int64[20]]',
                 "the model's forward failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied",
                 '(at fixture_nets.py:'):
        assert text in message, message
    assert len(message.splitlines()) == 2
    assert trainer.loss_iter == 0 and trainer.cur_epoch == 0 and not (tmp_path / 'checkpoint').exists()
    assert all(module.training for module in trainer.model.get_net().modules())
    # raised before Lightning starts, with no chained traceback from inside the model
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not any('lightning' in str(entry.path) for entry in caught.traceback)


@pytest.mark.parametrize(('loss', 'bad_label', 'at'), [('CrossEntropyLoss', 3, 199), ('NLLLoss', -1, 150)])
def test_a_label_out_of_range_anywhere_in_a_tensor_dataset_is_found(make_trainer, loss, bad_label, at):
    labels = torch.arange(200) % 3
    labels[at] = bad_label  # far beyond the first batch
    message = str(raised(make_trainer(train_dataset=labelled(200, labels), loss_function=loss)))
    for text in (f'label {bad_label} of sample {at} (1 sample(s) in all)', f"{loss} over the model's 3 outputs",
                 'labels must be 0..2', 'model output float32[20, 3]'):
        assert text in message, message


def test_labels_equal_to_ignore_index_are_not_out_of_range(make_trainer):
    labels = torch.arange(200) % 3
    labels[::7] = -100  # CrossEntropyLoss's default ignore_index
    trainer = make_trainer(train_dataset=labelled(200, labels), num_epochs=1)
    trainer.train()
    assert trainer.loss_iter == 10 and np.all(np.isfinite(trainer.get_loss_history()))


def test_val_and_test_labels_are_checked_before_training_too(make_trainer):
    for name, label in (('val_dataset', 5), ('test_dataset', 3)):
        message = str(raised(make_trainer(**{name: labelled(60, torch.full((60,), label))})))
        assert message.startswith(f'{name} (TensorDataset, 60 samples), model output float32[20, 3]:'), message
        assert f'label {label} of sample 0 (60 sample(s) in all)' in message


def test_labels_of_any_other_dataset_are_checked_over_the_first_batch(make_trainer):
    pairs = [(torch.randn(12), torch.tensor(i % 3)) for i in range(200)]
    pairs[4] = (pairs[4][0], torch.tensor(7))
    message = str(raised(make_trainer(train_dataset=Listed(pairs))))
    assert message.startswith('train_dataset (Listed, 200 samples), first batch [float32[20, 12], int64[20]]')
    assert 'label 7 of sample 4' in message


@pytest.mark.filterwarnings('ignore:Using a target size:UserWarning')  # torch's own notice, before it fails
def test_a_loss_that_does_not_fit_the_output_names_both(make_trainer):
    dataset = TensorDataset(torch.randn(200, 12), torch.randn(200, 5))
    message = str(raised(make_trainer(train_dataset=dataset, loss_function='MSELoss')))
    assert 'model output float32[20, 3]' in message and 'MSELoss failed on them: RuntimeError' in message


def test_a_batch_that_is_not_data_and_target_is_refused(make_trainer):
    base = labelled(200)
    message = str(raised(make_trainer(train_dataset=TensorDataset(*base.tensors, torch.ones(200)))))
    assert 'first batch [float32[20, 12], int64[20], float32[20]]' in message
    assert 'takes each batch as (data, target)' in message


def test_a_dataset_that_cannot_be_read_is_named(make_trainer):
    class Broken(Listed):
        def __getitem__(self, index: int):
            raise KeyError(f'no file for sample {index}')

    message = str(raised(make_trainer(train_dataset=Broken([None] * 200))))
    assert message.startswith('train_dataset (Broken, 200 samples): reading sample 0 failed')
    assert "KeyError: 'no file for sample 0'" in message


def test_samples_that_do_not_make_a_batch_are_named(make_trainer):
    pairs = [(torch.randn(12 if i % 2 == 0 else 11), torch.tensor(0)) for i in range(200)]
    message = str(raised(make_trainer(train_dataset=Listed(pairs))))
    assert message.startswith('train_dataset (Listed, 200 samples): its first 20 samples ((float32[12], int64[]), '
                              '(float32[11], int64[])'), message
    assert 'do not make a batch' in message and 'collate_fn' in message


def test_a_loader_of_whole_batches_is_read_as_the_loader_reads_it(make_trainer, fixture_data):
    class WholeBatches(Trainer):
        """A subclass whose loader gives the dataset's items as they are (batch_size=None): each is a batch."""

        def _init_dataloaders(self) -> None:
            super()._init_dataloaders()
            batches = Listed([(data[i:i + 20], labels[i:i + 20]) for i in range(0, 200, 20)])
            self.train_loader = torch.utils.data.DataLoader(batches, batch_size=None)

    data, labels = fixture_data.make(200, 11).tensors
    trainer = make_trainer(WholeBatches, num_epochs=1)
    trainer.train()
    assert trainer.loss_iter == 10
    labels = labels.clone()
    labels[5] = 4
    message = str(raised(make_trainer(WholeBatches, num_epochs=1)))
    assert message.startswith('train_dataset (Listed, 10 samples), first batch [float32[20, 12], int64[20]]')
    assert 'label 4 of sample 5' in message


def test_describe_names_shapes_and_dtypes():
    batch = {'image': torch.zeros(2, 3, dtype=torch.uint8), 'ids': [1, 2, 3, 4, 5, 6]}
    assert describe(batch) == "{'image': uint8[2, 3], 'ids': [int, int, int, int, ... (6 items)]}"
    assert describe((torch.zeros(4), 'x')) == '(float32[4], str)'

"""Test helpers: the shape of a saved object, and the original's way of reading a checkpoint."""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import Any

import numpy as np
import torch


def signature(obj: Any) -> Any:
    """Keys, order and types of a nested object, without the values: two files of one format match."""
    if isinstance(obj, dict):
        return (type(obj).__name__, [(key, signature(value)) for key, value in obj.items()])
    if isinstance(obj, torch.Tensor):
        return ('Tensor', str(obj.dtype), obj.dim())
    if isinstance(obj, np.ndarray):
        return ('ndarray', str(obj.dtype), obj.ndim)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [signature(item) for item in obj])
    return type(obj).__name__


def original_style_load(fname: Any) -> Any:
    """Read a checkpoint the way the original Lernomatic's Trainer.load_checkpoint did.

    A bare `torch.load` (weights-only by default on torch >= 2.6), `importlib` on the stored import
    path, the wrapper's no-argument constructor, then the module class and `load_state_dict`.
    """
    data = torch.load(fname)
    meta = data['model']
    wrapper = getattr(importlib.import_module(meta['model_import_path']), meta['model_name'])()
    module_class = getattr(importlib.import_module(meta['module_import_path']), meta['module_name'])
    wrapper.net = module_class()
    wrapper.net.load_state_dict(meta['model_state_dict'])
    optimizer = getattr(torch.optim, data['trainer_params']['optim_function'])(
        wrapper.net.parameters(), lr=data['trainer_params']['learning_rate'])
    optimizer.load_state_dict(data['optim'])
    return wrapper, optimizer, data['trainer_params']


def state_dicts_equal(a: OrderedDict[str, torch.Tensor], b: OrderedDict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def plain_pytorch_run(nets: Any, data: Any, expected: dict, epochs: int, device: torch.device) -> dict:
    """The original's default loops written out in plain PyTorch: the reference for this machine's numerics.

    Float rounding differs between CPUs and torch builds by an ulp or so; a trainer must match this
    loop exactly wherever it runs, and the fixture's numbers within the tolerances in tests/conftest.py.
    """
    torch.manual_seed(expected['torch_seed_before_model'])
    model = nets.MLPModel()
    model.net.to(device)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=expected['learning_rate'], weight_decay=1e-5)
    criterion = torch.nn.CrossEntropyLoss()
    train = torch.utils.data.DataLoader(data.make(200, 11), batch_size=20, shuffle=False, drop_last=True)
    val = torch.utils.data.DataLoader(data.make(60, 12), batch_size=20, shuffle=False, drop_last=True)
    losses, val_losses, accuracies = [], [], []
    for _ in range(epochs):
        model.net.train()
        for x, y in train:
            x, y = x.to(device), y.to(device)
            loss = criterion(model.net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.net.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val:
                x, y = x.to(device), y.to(device)
                output = model.net(x)
                val_losses.append(criterion(output, y).item())
                correct += (output.argmax(1) == y).sum().item()
        accuracies.append(correct / len(val.dataset))
    return {'loss_history': losses, 'val_loss_history': val_losses, 'acc_history': accuracies,
            'state_dict': model.net.state_dict(), 'optim_state': optimizer.state_dict()['state']}


HISTORY_NAMES = ('loss_history', 'val_loss_history', 'acc_history')


def assert_same_numbers(trainer: Any, reference_run: dict, expected: dict) -> None:
    """The trainer's histories equal the plain loop's in this process bit for bit, and the original's
    fixture within FIXTURE_RTOL (its numbers were computed on another CPU: tests/conftest.py)."""
    from conftest import FIXTURE_RTOL
    actual = {'loss_history': trainer.get_loss_history(), 'val_loss_history': trainer.get_val_loss_history(),
              'acc_history': trainer.get_acc_history()}
    for name in HISTORY_NAMES:
        assert actual[name].tolist() == reference_run[name], name
        count = min(len(expected[name]), len(actual[name]))
        np.testing.assert_allclose(actual[name][:count], expected[name][:count], rtol=FIXTURE_RTOL, err_msg=name)


class CountedReads(torch.utils.data.Dataset):
    """A dataset counting every sample read from it: zero reads means no work was done (item by item, not a
    TensorDataset, so nothing is gathered on the device behind its back)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.reads = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        self.reads += 1
        return self.base[index]

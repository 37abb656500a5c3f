"""LernomaticModule: any LernomaticModel under a plain `lightning.Trainer`."""

from __future__ import annotations

import lightning
import torch
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule


def plain_trainer(tmp_path, epochs):
    return lightning.Trainer(max_epochs=epochs, accelerator='cpu', devices=1, logger=False,
                             enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)


def test_plain_lightning_trains_the_wrapped_net(fixture_nets, fixture_data, tmp_path):
    torch.manual_seed(0)
    model = fixture_nets.MLPModel()
    module = LernomaticModule(model, learning_rate=0.01)
    assert module.net is model.net  # wrapped, not copied
    before = model.net.body[0].weight.detach().clone()
    trainer = plain_trainer(tmp_path, 5)
    train = DataLoader(fixture_data.make(200, 11), batch_size=20)
    val = DataLoader(fixture_data.make(60, 12), batch_size=20)
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    assert not torch.equal(before, model.net.body[0].weight)
    val_accuracy = float(trainer.callback_metrics['acc/val'])
    assert val_accuracy > 0.6
    result = trainer.test(module, dataloaders=val, verbose=False)[0]
    assert result['acc/test'] == val_accuracy


def test_lightning_checkpoint_carries_model_metadata(fixture_nets, fixture_data, tmp_path):
    module = LernomaticModule(fixture_nets.MLPModel())
    trainer = plain_trainer(tmp_path, 1)
    trainer.fit(module, train_dataloaders=DataLoader(fixture_data.make(40, 1), batch_size=20))
    trainer.save_checkpoint(tmp_path / 'run.ckpt')
    data = torch.load(tmp_path / 'run.ckpt', weights_only=False)
    assert data['lernomatic_model'] == {'model_name': 'MLPModel', 'model_import_path': 'fixture_nets',
                                        'module_name': 'MLP', 'module_import_path': 'fixture_nets'}
    assert set(data['state_dict']) >= {'net.body.0.weight', 'net.body.2.bias'}


def test_given_criterion_and_optimizer_are_used(fixture_nets, fixture_data, tmp_path):
    model = fixture_nets.MLPModel()
    optimizer = torch.optim.SGD(model.net.parameters(), lr=0.05)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    module = LernomaticModule(model, criterion=criterion, optimizer=optimizer)
    assert module.configure_optimizers() is optimizer and module.criterion is criterion
    plain_trainer(tmp_path, 1).fit(module, train_dataloaders=DataLoader(fixture_data.make(40, 1), batch_size=20))
    assert optimizer.state_dict()['param_groups'][0]['lr'] == 0.05

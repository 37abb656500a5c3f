"""Hand-written train_epoch / val_epoch / test_epoch running batch by batch inside Lightning's loops."""

from __future__ import annotations

import copy

import lightning
import numpy as np
import pytest
import torch

from conftest import TEST_DEVICE
from helpers import CountedReads, assert_same_numbers, state_dicts_equal
from legacy_trainers import DiscriminatorModel, GANTrainer, GeneratorModel, LegacyClassifierTrainer


class BatchCounter(lightning.Callback):
    def __init__(self) -> None:
        self.train_starts = self.train_ends = self.val_starts = self.val_ends = self.epochs = 0

    def on_train_batch_start(self, *args):
        self.train_starts += 1

    def on_train_batch_end(self, *args):
        self.train_ends += 1

    def on_validation_batch_start(self, *args):
        self.val_starts += 1

    def on_validation_batch_end(self, *args):
        self.val_ends += 1

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs += 1
        # user callbacks see the epoch finished: the loop's closing code has run
        assert pl_module.legacy.events[-1] in ('val:end', 'test:end', 'train:end')


def test_callbacks_fire_once_per_batch_of_the_users_loops(make_trainer):
    counter = BatchCounter()
    trainer = make_trainer(LegacyClassifierTrainer, callbacks=[counter])
    trainer.train()
    assert (counter.train_starts, counter.train_ends) == (30, 30)
    assert (counter.val_starts, counter.val_ends) == (9, 9)
    assert counter.epochs == 3


def test_code_after_the_loop_runs_once_per_epoch_in_order(make_trainer, fixture_data):
    trainer = make_trainer(LegacyClassifierTrainer, test_dataset=fixture_data.make(40, 3))
    trainer.train()
    assert trainer.events == ['train:start', 'train:end', 'val:start', 'val:end', 'test:start', 'test:end'] * 3
    assert trainer.test_batches == 2


def test_hand_written_loops_give_the_numbers_of_a_direct_call(make_trainer, expected, reference):
    under_lightning = make_trainer(LegacyClassifierTrainer)
    under_lightning.train()
    assert_same_numbers(under_lightning, reference[3], expected)
    direct = make_trainer(LegacyClassifierTrainer)
    for _ in range(3):
        direct.train_epoch()  # plain Python: the real DataLoader, no Lightning
        direct.val_epoch()
    assert under_lightning.get_loss_history().tolist() == direct.get_loss_history().tolist()
    assert under_lightning.get_acc_history().tolist() == direct.get_acc_history().tolist()
    assert state_dicts_equal(under_lightning.get_model_params(), direct.get_model_params())


def test_loader_length_dataset_and_device_inside_the_loop(make_trainer):
    trainer = make_trainer(LegacyClassifierTrainer, num_epochs=1)
    trainer.train()
    assert trainer.seen_lengths == [(10, 200)]
    assert set(trainer.seen_devices) == {str(TEST_DEVICE)} and trainer.device == TEST_DEVICE
    assert type(trainer.train_loader).__name__ == 'DataLoader'  # the trainer's own loader is back


def test_early_break_ends_lightnings_epoch_and_still_validates(make_trainer):
    counter = BatchCounter()
    trainer = make_trainer(LegacyClassifierTrainer, break_after=4, callbacks=[counter])
    trainer.train()
    assert trainer.loss_iter == 12 and trainer.cur_epoch == 3
    assert counter.train_ends == 12
    assert trainer.acc_iter == 3 and counter.val_ends == 9
    assert trainer.events == ['train:start', 'train:end', 'val:start', 'val:end'] * 3


def test_errors_in_the_users_loop_surface_and_leave_the_trainer_whole(make_trainer):
    class Broken(LegacyClassifierTrainer):
        def train_epoch(self):
            for batch_idx, _ in enumerate(self.train_loader):
                if batch_idx == 2:
                    raise ValueError('bad batch 2')

    trainer = make_trainer(Broken)
    optimizer = trainer.optimizer
    with pytest.raises(ValueError, match='bad batch 2'):
        trainer.train()
    assert trainer.optimizer is optimizer and type(trainer.train_loader).__name__ == 'DataLoader'


def test_bf16_mixed_runs_the_users_forward_under_autocast(make_trainer):
    trainer = make_trainer(LegacyClassifierTrainer, precision='bf16-mixed', num_epochs=1)
    trainer.train()
    assert trainer.seen_dtypes == {torch.bfloat16}
    assert trainer.loss_iter == 10 and np.all(np.isfinite(trainer.get_loss_history()))


def test_backward_helper_gives_the_same_numbers(make_trainer, reference):
    trainer = make_trainer(LegacyClassifierTrainer, use_backward_helper=True)
    trainer.train()
    assert trainer.get_loss_history().tolist() == reference[3]['loss_history']
    loss = trainer.model.forward(torch.randn(2, 12, device=trainer.device)).sum()  # outside training: plain
    trainer.backward(loss)
    assert trainer.model.net.body[0].weight.grad is not None


def make_gan(fixture_data, tmp_path, **overrides):
    torch.manual_seed(3)
    options = dict(train_dataset=fixture_data.make(200, 11), batch_size=20, num_epochs=2, learning_rate=2e-3,
                   num_workers=0, verbose=False, save_every=0, checkpoint_dir=str(tmp_path / 'gan'))
    options.update(overrides)
    return GANTrainer(GeneratorModel(), DiscriminatorModel(), **options)


def test_gan_trainer_trains_checkpoints_reloads_and_goes_on(fixture_data, tmp_path):
    gan = make_gan(fixture_data, tmp_path)
    before = copy.deepcopy(gan.generator.get_net_state_dict())
    gan.train()
    assert gan.loss_iter == 20 and gan.post_loop_calls == 2 and gan.cur_epoch == 2
    assert np.all(gan.d_loss_history > 0) and np.all(gan.g_loss_history > 0)
    assert not state_dicts_equal(before, gan.generator.get_net_state_dict())
    assert isinstance(gan.optim_g, torch.optim.Adam) and type(gan.optim_g) is torch.optim.Adam  # given back
    fname = str(tmp_path / 'gan.pkl')
    gan.save_checkpoint(fname)
    saved = torch.load(fname)
    assert list(saved['generator']['model_state_dict'])[0] == 'body.0.weight'  # no 'module.' prefix
    history = torch.load(tmp_path / 'gan' / 'ck_history.pkl')
    assert history['d_loss_history'][:20].tolist() == gan.d_loss_history[:20].tolist()

    resumed = GANTrainer(None, None, train_dataset=fixture_data.make(200, 11), batch_size=20, num_workers=0,
                         verbose=False, save_every=0, checkpoint_dir=str(tmp_path / 'gan2'))
    resumed.load_checkpoint(fname)
    resumed.load_history(str(tmp_path / 'gan' / 'ck_history.pkl'))
    assert resumed.cur_epoch == 2 and resumed.beta1 == 0.5
    assert resumed.optim_g.state_dict()['state'][0]['step'].item() == 20
    resumed.set_num_epochs(3)
    assert len(resumed.d_loss_history) == 30
    assert resumed.d_loss_history[:20].tolist() == gan.d_loss_history[:20].tolist()
    resumed.train()
    assert resumed.loss_iter == 30 and resumed.cur_epoch == 3 and np.all(resumed.d_loss_history[20:] > 0)
    assert resumed.optim_g.state_dict()['state'][0]['step'].item() == 30


def test_gan_loop_under_lightning_equals_a_direct_call(fixture_data, tmp_path):
    lightning_run = make_gan(fixture_data, tmp_path)
    torch.manual_seed(11)
    lightning_run.train()
    direct = make_gan(fixture_data, tmp_path)
    torch.manual_seed(11)
    for _ in range(2):
        direct.train_epoch()
    assert lightning_run.d_loss_history.tolist() == direct.d_loss_history.tolist()
    assert lightning_run.g_loss_history.tolist() == direct.g_loss_history.tolist()
    assert state_dicts_equal(lightning_run.generator.get_net_state_dict(), direct.generator.get_net_state_dict())
    assert state_dicts_equal(lightning_run.discriminator.get_net_state_dict(),
                             direct.discriminator.get_net_state_dict())


def test_every_held_model_is_registered_with_lightning(fixture_data, tmp_path):
    names = []

    class Spy(lightning.Callback):
        def on_fit_start(self, trainer, pl_module):
            names.extend(sorted(pl_module.held))
            assert trainer.optimizers and len(trainer.optimizers) == 2

    make_gan(fixture_data, tmp_path, num_epochs=1, callbacks=[Spy()]).train()
    assert names == ['criterion', 'discriminator', 'generator']


def test_ddp_names_select_the_strategy_for_hand_written_loops():
    from compat.lightning_internals import UnwrappedDDPStrategy
    from compat.loop.ddp import strategy_for_hand_written_loops
    for name in ('ddp', 'ddp_spawn', 'ddp_find_unused_parameters_true'):
        assert isinstance(strategy_for_hand_written_loops(name), UnwrappedDDPStrategy), name
    assert strategy_for_hand_written_loops('auto') == 'auto'


class ValidatesElsewhere(LegacyClassifierTrainer):
    """An old val_epoch that never reads self.val_loader (it scores a held-out set its own way)."""

    def val_epoch(self) -> None:
        self.events.append('val:end')


class ValidatesOneBatch(LegacyClassifierTrainer):
    def val_epoch(self) -> None:
        for _, labels in self.val_loader:
            self.events.append(f'val:{len(labels)}')
            break
        self.events.append('val:end')


@pytest.mark.parametrize('trainer_class, events', [(ValidatesElsewhere, ['val:end']),
                                                   (ValidatesOneBatch, ['val:20', 'val:end'])])
def test_a_val_epoch_that_reads_little_costs_little(make_trainer, fixture_data, trainer_class, events):
    """Lightning stops fetching validation batches once the user's val_epoch has returned: at most the
    first batch and the one it prefetched, not the 10 of the loader."""
    val_data = CountedReads(fixture_data.make(200, 12))
    counter = BatchCounter()
    trainer = make_trainer(trainer_class, val_dataset=val_data, callbacks=[counter])
    trainer.train()
    assert trainer.events == ['train:start', 'train:end', *events] * 3
    assert val_data.reads <= 3 * 2 * 20, val_data.reads
    assert counter.val_ends <= 3 * 2


def test_a_val_epoch_that_reads_everything_still_gets_everything(make_trainer, fixture_data):
    val_data = CountedReads(fixture_data.make(200, 12))
    trainer = make_trainer(LegacyClassifierTrainer, val_dataset=val_data)
    trainer.train()
    assert val_data.reads == 3 * 200 and trainer.val_loss_iter == 30


class SavesAndSaysSo(LegacyClassifierTrainer):
    """An old loop that announces and writes its own checkpoints, as the original's train_epoch did."""

    def train_epoch(self) -> None:
        super().train_epoch()
        ck_name = f'{self.checkpoint_dir}/{self.checkpoint_name}_epoch_{self.cur_epoch}_iter_{self.loss_iter}.pkl'
        print(f'\t Saving checkpoint to file [{ck_name}] ')
        self.save_checkpoint(ck_name)


class OwnTrainLoop(LegacyClassifierTrainer):
    """An old `train()` of its own: its epochs, its prints, its saves; none of the run's bookkeeping."""

    def train(self) -> None:
        for _ in range(self.cur_epoch, self.num_epochs):
            self.train_epoch()
            self.val_epoch()
            hist_name = f'{self.checkpoint_dir}/{self.checkpoint_name}_history.pkl'
            print(f'\t Saving history to file [{hist_name}] ')
            self.save_history(hist_name)
            ck_name = f'{self.checkpoint_dir}/{self.checkpoint_name}_epoch_{self.cur_epoch}.pkl'
            print(f'\t Saving checkpoint to file [{ck_name}] ')
            self.save_checkpoint(ck_name)
            self.cur_epoch += 1


@pytest.mark.parametrize('trainer_class', [SavesAndSaysSo, OwnTrainLoop])
def test_a_loop_that_announces_its_own_saves_is_not_echoed(make_trainer, trainer_class, tmp_path, capsys, caplog):
    """Each file a hand-written loop writes is announced once, by its own print; the run adds no second line."""
    import logging
    (tmp_path / 'checkpoint').mkdir()
    with caplog.at_level(logging.INFO, logger='lernomatic'):
        make_trainer(trainer_class, num_epochs=2, verbose=True, save_hist=trainer_class is SavesAndSaysSo).train()
    printed = capsys.readouterr().out
    logged = '\n'.join(r.getMessage() for r in caplog.records)
    written = sorted((tmp_path / 'checkpoint').glob('ck_epoch_*.pkl'))
    assert len(written) == 2
    for path in written:
        assert printed.count(path.name) == 1 and path.name not in logged, (printed, logged)
    history = 'ck_history.pkl'
    if trainer_class is OwnTrainLoop:  # its own save_history calls, announced by its own prints only
        assert printed.count(history) == 2 and history not in logged
    else:  # the run's own history write at each epoch's end: announced by the run, once an epoch
        assert logged.count(history) == 2 and history not in printed


class SeesItsOptimizer(LegacyClassifierTrainer):
    def train_epoch(self) -> None:
        self.seen_optimizer = self.optimizer
        super().train_epoch()


def test_the_routed_optimizer_is_the_users_own_underneath(make_trainer):
    trainer = make_trainer(SeesItsOptimizer, num_epochs=1)
    own = trainer.optimizer
    trainer.train()
    routed = trainer.seen_optimizer
    assert routed is not own and isinstance(routed, torch.optim.Adam)  # old isinstance checks hold
    assert routed.optimizer is own  # public, as Lightning's LightningOptimizer.optimizer
    assert trainer.optimizer is own  # given back after train()

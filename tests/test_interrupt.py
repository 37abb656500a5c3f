"""Interrupted runs: Ctrl-C reaches an old script's `except KeyboardInterrupt`, and a run stopped by any
exception leaves a trainer whose checkpoint loads and resumes (compat/loop/interruption.py, good_step.py).

The Ctrl-C tests run an old-style script (tests/interrupt/old_script.py) in a subprocess: it waits
for its SIGINT at a known batch (it writes a marker and pauses; no sleep-guessing), saves a
checkpoint in its `except KeyboardInterrupt`, and a new process resumes from that file. The
resumed run must end with the uninterrupted run's weights, optimizer state and histories exactly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from compat.codec.checkpoint import read_checkpoint
from compat.errors import UnsavableStateError
from compat.loop.lightning_trainer import BoundedTensorBoardLogger, lightning_logger
from lernomatic.train.trainer import Trainer

SCRIPT = Path(__file__).resolve().parent / 'interrupt' / 'old_script.py'
GUARD_S = 120  # a guard against a hang (the runs take a few seconds), not a timing assertion


def _start(mode: str, folder: Path, loop: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), mode, str(folder), loop], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run(mode: str, folder: Path, loop: str) -> str:
    process = _start(mode, folder, loop)
    out, err = process.communicate(timeout=GUARD_S)
    assert process.returncode == 0, err[-3000:]
    return out


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + GUARD_S
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f'the script ended before writing {path.name}: {process.communicate()[1][-3000:]}')
        assert time.monotonic() < deadline, f'no {path.name} within {GUARD_S} s'
        time.sleep(0.05)


def _same_final(a: Path, b: Path) -> None:
    left, right = (torch.load(folder / 'final.pt', weights_only=False) for folder in (a, b))
    assert list(left['params']) == list(right['params'])
    assert all(torch.equal(left['params'][k], right['params'][k]) for k in left['params'])
    assert all(torch.equal(left['optim'][i][n], right['optim'][i][n]) for i in left['optim'] for n in left['optim'][i])
    for name in ('loss', 'val', 'acc'):
        assert np.array_equal(left[name], right[name]), name
    for name in ('cur_epoch', 'best_acc', 'loss_iter'):
        assert left[name] == right[name], name


@pytest.mark.parametrize('loop', ['default', 'hand'])
def test_ctrl_c_reaches_old_scripts_except_and_resumes_exactly(tmp_path: Path, loop: str) -> None:
    whole, interrupted = tmp_path / 'whole', tmp_path / 'interrupted'
    whole.mkdir()
    interrupted.mkdir()
    _run('full', whole, loop)

    process = _start('run', interrupted, loop)
    _wait_for(interrupted / 'marker', process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=GUARD_S)
    assert process.returncode == 0, err[-3000:]
    assert out.splitlines() == ['saved', 'after train'], (out, err[-3000:])  # the except block ran, then the rest
    assert 'SystemExit' not in err

    record = read_checkpoint(interrupted / 'interrupted.pkl')['resume']
    assert (record['phase'], record['epoch'], record['batches_done']) == ('train', 2, 4)
    assert record['counters']['loss_iter'] == 2 * 10 + 4  # the counters agree with the position

    _run('resume', interrupted, loop)
    _same_final(whole, interrupted)


def test_second_ctrl_c_during_a_slow_clean_up_ends_the_process(tmp_path: Path) -> None:
    # the script's clean-up (a callback's on_exception) sleeps 300 s; the guard below is 120 s
    process = _start('slow_cleanup', tmp_path, 'default')
    _wait_for(tmp_path / 'marker', process)
    process.send_signal(signal.SIGINT)
    _wait_for(tmp_path / 'cleanup', process)
    process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError('a second Ctrl-C during the clean-up did not end the process') from None
    assert process.returncode == -signal.SIGINT  # ended by the signal itself, as an unhandled Ctrl-C ends a program


class FailsOnce(Dataset):
    """A dataset whose `fail_at_read`-th read overall raises (a corrupt sample on a network disk), once.

    Read in this process (`num_workers=0`) through a DataLoader (`data_on_device=False`: not gathered on the device).
    """

    def __init__(self, base: Dataset, fail_at_read: int) -> None:
        self.base, self.fail_at_read, self.reads = base, fail_at_read, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        self.reads += 1
        if self.reads == self.fail_at_read:
            raise OSError(f'corrupt sample {index}')
        return self.base[index]


def _loader_error_trainer(folder: Path, dataset: Dataset, extra_nets: Any, fixture_data: Any,
                          **options: Any) -> Trainer:
    return Trainer(extra_nets.DropoutMLPModel(), train_dataset=dataset, val_dataset=fixture_data.make(60, 12),
                   batch_size=20, num_epochs=4, shuffle=True, learning_rate=3e-3, verbose=False, logger=False,
                   checkpoint_dir=str(folder), save_every=0, data_on_device=False, num_workers=0,
                   **options)


@pytest.fixture
def extra_nets() -> Any:
    import extra_nets
    return extra_nets


def test_loader_error_leaves_a_checkpoint_that_resumes(tmp_path: Path, extra_nets: Any, fixture_data: Any) -> None:
    torch.manual_seed(0)
    whole = _loader_error_trainer(tmp_path / 'whole', fixture_data.make(200, 11), extra_nets, fixture_data)
    whole.train()

    torch.manual_seed(0)
    failing = FailsOnce(fixture_data.make(200, 11), fail_at_read=200 + 95)  # epoch 1, in its 5th batch
    broken = _loader_error_trainer(tmp_path / 'run', failing, extra_nets, fixture_data)
    with pytest.raises(OSError, match='corrupt sample'):
        broken.train()
    saved = tmp_path / 'run' / 'after_error.pkl'
    broken.save_checkpoint(str(saved))
    record = read_checkpoint(saved)['resume']
    # Lightning had fetched batch 4 and was fetching batch 5: three batches of epoch 1 were trained
    assert (record['phase'], record['epoch'], record['batches_done']) == ('train', 1, 3)
    assert record['counters']['loss_iter'] == 10 + 3 and record['counters']['acc_iter'] == 1

    torch.manual_seed(999)
    resumed = _loader_error_trainer(tmp_path / 'run', fixture_data.make(200, 11), extra_nets, fixture_data)
    resumed.load_checkpoint(str(saved))
    resumed.load_history(str(tmp_path / 'run' / 'ck_history.pkl'))
    resumed.train()  # before: IndexError two epochs on (the epoch restarted with its counters mid-epoch)
    assert resumed.loss_iter == len(resumed.loss_history) == 40 and resumed.acc_iter == 4
    assert all(torch.equal(a, b) for a, b in zip(whole.get_model_params().values(),
                                                  resumed.get_model_params().values(), strict=True))
    for name in ('loss_history', 'val_loss_history', 'acc_history'):
        assert np.array_equal(getattr(whole, name), getattr(resumed, name)), name


def test_same_trainer_trains_on_after_a_loader_error(tmp_path: Path, extra_nets: Any, fixture_data: Any) -> None:
    torch.manual_seed(0)
    failing = FailsOnce(fixture_data.make(200, 11), fail_at_read=200 + 95)
    trainer = _loader_error_trainer(tmp_path, failing, extra_nets, fixture_data)
    with pytest.raises(OSError):
        trainer.train()
    assert (trainer.cur_epoch, trainer.loss_iter) == (1, 13)
    trainer.train()  # the read that failed succeeds now: the run goes on from batch 3 of epoch 1
    assert trainer.loss_iter == 40 and trainer.acc_iter == 4 and trainer.cur_epoch == 4
    assert np.isfinite(trainer.loss_history).all() and (trainer.loss_history != 0).all()


class StepsThenFails(Trainer):
    """A hand-written loop with a bug after its optimizer step (at one batch): the weights are one step ahead."""

    def train_epoch(self) -> None:
        for batch_idx, (data, target) in enumerate(self.train_loader):
            loss = self.criterion(self.model.forward(data), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if (self.cur_epoch, batch_idx) == (1, 2):
                raise RuntimeError('bug in the loop')
            self.loss_history[self.loss_iter] = loss.item()
            self.loss_iter += 1


def test_save_refused_after_a_step_no_counter_records(tmp_path: Path, extra_nets: Any, fixture_data: Any) -> None:
    trainer = StepsThenFails(extra_nets.DropoutMLPModel(), train_dataset=fixture_data.make(200, 11), batch_size=20,
                             num_epochs=3, verbose=False, logger=False, checkpoint_dir=str(tmp_path), save_every=0)
    with pytest.raises(RuntimeError, match='bug in the loop'):
        trainer.train()
    target = tmp_path / 'after_bug.pkl'
    with pytest.raises(UnsavableStateError, match='inside a step of epoch 2/3.*after the optimizer had stepped'):
        trainer.save_checkpoint(str(target))
    assert not target.exists()
    assert (trainer.cur_epoch, trainer.loss_iter) == (1, 12)  # back at the last finished step


class HungWriter:
    """An event writer whose close never returns until released (as TensorBoard's did after a badly timed Ctrl-C)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.release.wait()


def test_tensorboard_close_is_bounded_and_the_logger_replaced(tmp_path: Path, make_trainer: Any) -> None:
    trainer = make_trainer(logger=True, checkpoint_dir=str(tmp_path))
    logger = lightning_logger(trainer)
    assert isinstance(logger, BoundedTensorBoardLogger)
    logger.close_timeout_s = 0.2
    hung = HungWriter()
    logger._experiment = hung  # the writer Lightning's finalize flushes and closes
    closing = threading.Thread(target=logger.finalize, args=('failed',), daemon=True)
    closing.start()
    closing.join(GUARD_S)  # a guard: the bound is 0.2 s
    try:
        assert not closing.is_alive(), 'finalize waited for the hung writer'
        assert logger.given_up
        assert lightning_logger(trainer) is not logger  # the next train() writes through a new one
    finally:
        hung.release.set()

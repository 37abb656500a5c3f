"""Run by tests/test_interrupt.py: a training script written as the original's users wrote them.

`old_script.py MODE FOLDER LOOP`, LOOP 'default' or 'hand' (a hand-written `train_epoch`):
- `run`: trains; after batch 4 of epoch 2 it writes FOLDER/marker and waits for a signal (the test
  sends SIGINT). `except KeyboardInterrupt` saves FOLDER/interrupted.pkl and prints 'saved'; the
  code after the `try` prints 'after train'.
- `resume`: a new process loads interrupted.pkl and the history file, trains to the end.
- `full`: the same run, uninterrupted.
- `slow_cleanup`: as `run`, but the clean-up after Ctrl-C is slow (a callback's `on_exception`
  writes FOLDER/cleanup and sleeps 300 s): a second Ctrl-C must end the process.
`run`, `resume` and `full` write FOLDER/final.pt: weights, optimizer state, histories.
"""

import signal
import sys
import time
from pathlib import Path

import lightning
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent / 'data'), str(HERE.parent / 'data' / 'original')]

from lernomatic.train.trainer import Trainer  # noqa: E402

import extra_nets  # noqa: E402
import fixture_data  # noqa: E402

EPOCHS = 4
STOP_AT = (2, 4)  # (epoch, batch): where the interrupted run waits for its Ctrl-C


def wait_for_ctrl_c(folder: Path) -> None:
    (folder / 'marker').write_text('waiting')
    signal.pause()  # returns once a handler has run (Python's own raises KeyboardInterrupt here instead)


class PauseOnce(lightning.Callback):
    def __init__(self, folder: Path, slow_cleanup: bool = False) -> None:
        self.folder, self.slow_cleanup = folder, slow_cleanup

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (pl_module.legacy.cur_epoch, batch_idx + 1) == STOP_AT:
            wait_for_ctrl_c(self.folder)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.slow_cleanup:
            (self.folder / 'cleanup').write_text('started')
            time.sleep(300)


class HandWrittenTrainer(Trainer):
    """The original's default training loop, written out in a subclass as old users did."""

    def __init__(self, model=None, **kwargs) -> None:
        self.pause_in = kwargs.pop('pause_in', None)
        super().__init__(model, **kwargs)

    def train_epoch(self) -> None:
        self.model.set_train()
        for batch_idx, (data, target) in enumerate(self.train_loader):
            data, target = data.to(self.device), target.to(self.device)
            loss = self.criterion(self.model.forward(data), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.loss_history[self.loss_iter] = loss.item()
            self.loss_iter += 1
            if self.pause_in is not None and (self.cur_epoch, batch_idx + 1) == STOP_AT:
                wait_for_ctrl_c(self.pause_in)


def make_trainer(folder: Path, loop: str, mode: str) -> Trainer:
    pausing = mode in ('run', 'slow_cleanup')
    options = dict(train_dataset=fixture_data.make(200, 11), val_dataset=fixture_data.make(60, 12), batch_size=20,
                   num_epochs=EPOCHS, shuffle=True, learning_rate=3e-3, verbose=False, logger=False,
                   checkpoint_dir=str(folder), save_every=0)
    if loop == 'hand':
        return HandWrittenTrainer(extra_nets.DropoutMLPModel(), pause_in=folder if pausing else None, **options)
    callbacks = [PauseOnce(folder, mode == 'slow_cleanup')] if pausing else []
    return Trainer(extra_nets.DropoutMLPModel(), callbacks=callbacks, **options)


def write_final(trainer: Trainer, folder: Path) -> None:
    torch.save({'params': trainer.get_model_params(), 'optim': trainer.optimizer.state_dict()['state'],
                'loss': trainer.get_loss_history(), 'val': trainer.get_val_loss_history(),
                'acc': trainer.get_acc_history(), 'cur_epoch': trainer.cur_epoch, 'best_acc': trainer.best_acc,
                'loss_iter': trainer.loss_iter},
               folder / 'final.pt')


if __name__ == '__main__':
    # as from a terminal: a process started in the background of a shell script inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode, folder, loop = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    torch.manual_seed(999 if mode == 'resume' else 0)  # a resumed process starts with other generators
    trainer = make_trainer(folder, loop, mode)
    if mode == 'resume':
        trainer.load_checkpoint(str(folder / 'interrupted.pkl'))
        trainer.load_history(str(folder / 'ck_history.pkl'))
    try:
        trainer.train()
    except KeyboardInterrupt:
        trainer.save_checkpoint(str(folder / 'interrupted.pkl'))
        print('saved', flush=True)
    print('after train', flush=True)
    if mode != 'run' and mode != 'slow_cleanup':
        write_final(trainer, folder)

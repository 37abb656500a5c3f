"""Run by tests/test_kill.py: a run that checkpoints every 3 iterations, killed and resumed by the test.

`train_or_resume.py run FOLDER` trains from scratch; `train_or_resume.py resume FOLDER` loads the
newest checkpoint in FOLDER and the history file and trains to the end. Both write FOLDER/final.pt:
weights, optimizer state, histories. The run shuffles, validates, has dropout, a dataset that draws
noise in a DataLoader worker: everything an inexact resume gets wrong.
"""

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent / 'data'), str(HERE.parent / 'data' / 'original')]

from lernomatic.train.trainer import Trainer  # noqa: E402

import extra_nets  # noqa: E402
import fixture_data  # noqa: E402
from noisy_data import NoisyDataset  # noqa: E402

EPOCHS = 8


def make_trainer(folder: Path) -> Trainer:
    return Trainer(extra_nets.DropoutMLPModel(), train_dataset=NoisyDataset(fixture_data.make(200, 11)),
                   val_dataset=fixture_data.make(60, 12), batch_size=20, num_epochs=EPOCHS, shuffle=True,
                   num_workers=1, save_every=3, learning_rate=3e-3, verbose=False, logger=False,
                   checkpoint_dir=str(folder))


def newest_checkpoint(folder: Path) -> Path:
    candidates = [p for p in folder.glob('*.pkl') if not p.name.endswith('_history.pkl')]
    return max(candidates, key=lambda p: p.stat().st_mtime_ns)


if __name__ == '__main__':
    mode, folder = sys.argv[1], Path(sys.argv[2])
    torch.manual_seed(0 if mode == 'run' else 999)  # a resumed process starts with other generators
    trainer = make_trainer(folder)
    if mode == 'resume':
        checkpoint = newest_checkpoint(folder)
        trainer.load_checkpoint(str(checkpoint))
        trainer.load_history(str(folder / 'ck_history.pkl'))
        print(f'resumed from {checkpoint.name}', flush=True)
    trainer.train()
    torch.save({'params': trainer.get_model_params(), 'optim': trainer.optimizer.state_dict()['state'],
                'loss': trainer.get_loss_history(), 'val': trainer.get_val_loss_history(),
                'acc': trainer.get_acc_history(), 'cur_epoch': trainer.cur_epoch, 'best_acc': trainer.best_acc},
               folder / 'final.pt')

"""Run by tests/test_ddp.py: train on 2 CPU processes (gloo) with strategy='ddp', then dump each rank's state.

Lightning's 'ddp' launcher starts rank 1 by running this script again; each rank writes
params_rank<R>.pt, and uses checkpoint_dir <out>/rank<R> so files written by a rank other than 0 show.
"""

import argparse
import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent / 'data'), str(HERE.parent / 'data' / 'original')]

from lernomatic.train.trainer import Trainer  # noqa: E402

import fixture_data  # noqa: E402
import fixture_nets  # noqa: E402
from legacy_trainers import DiscriminatorModel, GANTrainer, GeneratorModel, LegacyClassifierTrainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=['default', 'classifier', 'gan'])
    parser.add_argument('out', type=Path)
    parser.add_argument('--accelerator', default='cpu')
    args = parser.parse_args()
    rank = int(os.environ.get('LOCAL_RANK', '0'))
    torch.manual_seed(100 + rank)  # different seeds: identical results can only come from the sync
    common = dict(train_dataset=fixture_data.make(200, 11), batch_size=20, num_epochs=2, num_workers=0,
                  verbose=False, shuffle=True, save_every=5, accelerator=args.accelerator, devices=2,
                  strategy='ddp', checkpoint_dir=str(args.out / f'rank{rank}'))
    if args.mode == 'gan':
        trainer = GANTrainer(GeneratorModel(), DiscriminatorModel(), **common)
        modules = {'generator': trainer.generator, 'discriminator': trainer.discriminator}
    else:
        trainer_class = Trainer if args.mode == 'default' else LegacyClassifierTrainer
        trainer = trainer_class(fixture_nets.MLPModel(), val_dataset=fixture_data.make(60, 12),
                                learning_rate=0.003, **common)
        modules = {'model': trainer.model}
    trainer.train()
    state = {name: model.get_net_state_dict() for name, model in modules.items()}
    torch.save({'state': state, 'loss_iter': trainer.loss_iter, 'cur_epoch': trainer.cur_epoch,
                'device': str(trainer.device)}, args.out / f'params_rank{rank}.pt')


if __name__ == '__main__':
    main()

"""Run by tests/test_cluster.py under torchrun: two "nodes" of one CPU process each (gloo), num_nodes=2.

    python -m torch.distributed.run --nnodes 2 --nproc_per_node 1 --node_rank N --master_addr 127.0.0.1 \\
        --master_port P train_two_nodes.py MODE OUT [--resume CHECKPOINT HISTORY]

MODE: 'default' (the Trainer's own loop), 'hand_written' (an old-style train_epoch that checkpoints
itself), 'gan' (two models, two optimizers, two backward passes a batch, the discriminator's
layers called outside its forward in its step, its own checkpoint format after each epoch). The run writes its files to
<OUT>/node<RANK> (a second writer would show there) or, resumed, to <OUT>/again<RANK>; each rank
dumps <OUT>/<run>_rank<RANK>.pt: parameters, optimizer state, histories, and what a probe saw.
"""

import argparse
import os
import sys
from pathlib import Path

import lightning
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent / 'data'), str(HERE.parent / 'data' / 'original')]

from compat.distributed import is_rank_zero  # noqa: E402
from lernomatic.train.trainer import Trainer  # noqa: E402

import extra_nets  # noqa: E402
import fixture_data  # noqa: E402
from legacy_trainers import DiscriminatorModel, GANTrainer, GeneratorModel  # noqa: E402
from noisy_data import NoisyDataset  # noqa: E402


class HandWrittenSaving(Trainer):
    """An old-style loop that records and checkpoints itself, as zoo trainers did."""

    def train_epoch(self) -> None:
        self.model.set_train()
        for data, target in self.train_loader:
            data, target = data.to(self.device), target.to(self.device)
            loss = self.criterion(self.model.forward(data), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.loss_history[self.loss_iter] = loss.item()
            self.loss_iter += 1
            if self.save_every > 0 and self.loss_iter % self.save_every == 0:
                self.save_checkpoint(f'{self.checkpoint_dir}/{self.checkpoint_name}_epoch_{self.cur_epoch}'
                                     f'_iter_{self.loss_iter}.pkl')


class OutsideForwardGAN(GANTrainer):
    """The discriminator's step calls its network's layers directly, not through its forward.

    Checkpoints itself after each epoch's loop, as zoo GAN trainers did, in its own format: the
    networks, optimizers, histories and torch's generator state.
    """

    def train_epoch(self) -> None:
        for real, _ in self.train_loader:
            real = real.to(self.device)
            ones = torch.ones(len(real), 1, device=self.device)
            zeros = torch.zeros(len(real), 1, device=self.device)
            fake = self.generator.forward(torch.randn(len(real), 4, device=self.device))
            self.optim_d.zero_grad()
            body = self.discriminator.net.body  # outside Discriminator.forward: DDP's reducer is not told
            d_loss = self.criterion(body(real), ones) + self.criterion(body(fake.detach()), zeros)
            d_loss.backward()
            self.optim_d.step()
            self.optim_g.zero_grad()
            g_loss = self.criterion(self.discriminator.forward(fake), ones)
            g_loss.backward()
            self.optim_g.step()
            self.d_loss_history[self.loss_iter] = d_loss.item()
            self.g_loss_history[self.loss_iter] = g_loss.item()
            self.loss_iter += 1
        self.save_checkpoint(f'{self.checkpoint_dir}/gan_epoch_{self.cur_epoch}.pkl')

    def save_checkpoint(self, fname: str) -> None:
        if not is_rank_zero():
            return
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        torch.save({'generator': self.generator.get_params(), 'discriminator': self.discriminator.get_params(),
                    'optim_g': self.optim_g.state_dict(), 'optim_d': self.optim_d.state_dict(),
                    'trainer_params': self.get_trainer_params(), 'loss_iter': self.loss_iter,
                    'g_loss_history': torch.from_numpy(self.g_loss_history.copy()),
                    'd_loss_history': torch.from_numpy(self.d_loss_history.copy()), 'rng': torch.get_rng_state()},
                   fname)

    def load_checkpoint(self, fname: str) -> None:
        super().load_checkpoint(fname)
        data = torch.load(fname)
        self.cur_epoch += 1  # written at the end of that epoch's loop
        self.loss_iter = data['loss_iter']
        self.g_loss_history, self.d_loss_history = data['g_loss_history'].numpy(), data['d_loss_history'].numpy()
        torch.set_rng_state(data['rng'])


class Probe(lightning.Callback):
    """What the run looked like from inside: world size, samplers' epochs, the step's own averages."""

    def __init__(self) -> None:
        self.seen = {'world_size': 0, 'sampler_epochs': [], 'fallback_params': None}

    def on_train_epoch_start(self, trainer, pl_module):
        sampler = trainer.train_dataloader.sampler
        self.seen['world_size'] = trainer.world_size
        self.seen['sampler_epochs'].append((type(sampler).__name__, getattr(sampler, 'epoch', None),
                                            trainer.current_epoch))

    def on_train_end(self, trainer, pl_module):
        held = pl_module.data_parallel
        self.seen['fallback_params'] = None if held is None else held.fallback_params


def build(mode: str, folder: Path, probe: Probe) -> Trainer:
    # strategy 'auto' on two nodes is DDP, for hand-written loops too
    common = dict(num_epochs=3, batch_size=20, num_workers=0, verbose=False, shuffle=True, devices=1,
                  accelerator='cpu', num_nodes=2, strategy='ddp' if mode == 'default' else 'auto',
                  checkpoint_dir=str(folder), callbacks=[probe])
    if mode == 'gan':
        return OutsideForwardGAN(GeneratorModel(), DiscriminatorModel(), train_dataset=fixture_data.make(200, 11),
                                 **common)
    trainer_class = Trainer if mode == 'default' else HandWrittenSaving
    return trainer_class(extra_nets.DropoutMLPModel(), train_dataset=NoisyDataset(fixture_data.make(200, 11)),
                         val_dataset=fixture_data.make(60, 12), save_every=3, learning_rate=0.003, **common)


def outcome(trainer: Trainer, mode: str, probe: Probe) -> dict:
    if mode == 'gan':
        models = {'generator': trainer.generator, 'discriminator': trainer.discriminator}
        optimizers = {'g': trainer.optim_g, 'd': trainer.optim_d}
        histories = {'g': trainer.g_loss_history.tolist(), 'd': trainer.d_loss_history.tolist()}
    else:
        models, optimizers = {'model': trainer.model}, {'model': trainer.optimizer}
        histories = {'loss': trainer.get_loss_history().tolist(), 'acc': trainer.get_acc_history().tolist(),
                     'val': trainer.get_val_loss_history().tolist()}
    return {'params': {name: model.get_net_state_dict() for name, model in models.items()},
            'optim': {name: optimizer.state_dict()['state'] for name, optimizer in optimizers.items()},
            'histories': histories, 'cur_epoch': trainer.cur_epoch, 'loss_iter': trainer.loss_iter,
            'probe': probe.seen}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=['default', 'hand_written', 'gan'])
    parser.add_argument('out', type=Path)
    parser.add_argument('--resume', nargs=2, type=Path, metavar=('CHECKPOINT', 'HISTORY'))
    args = parser.parse_args()
    rank = int(os.environ['RANK'])
    probe = Probe()
    if args.resume:
        torch.manual_seed(12345)  # the generators elsewhere: only the checkpoint can put them back
        trainer = build(args.mode, args.out / f'again{rank}', probe)
        trainer.load_checkpoint(str(args.resume[0]))
        if args.mode != 'gan':  # the GAN's own checkpoint holds its histories
            trainer.load_history(str(args.resume[1]))
    else:
        trainer = build(args.mode, args.out / f'node{rank}', probe)
    trainer.train()
    run = 'resumed' if args.resume else 'whole'
    path = args.out / f'{run}_rank{rank}.pt'
    torch.save(outcome(trainer, args.mode, probe), path.with_suffix('.tmp'))
    os.replace(path.with_suffix('.tmp'), path)  # whole when it appears: the test waits for it


if __name__ == '__main__':
    main()

"""Training steps per second of the same model, data and optimizer in several styles, side by side.

Styles: `raw` (hand-written loop, no host sync), `raw_item` (the same with `loss.item()` each step,
as the original Lernomatic did), `lightning` (plain `lightning.Trainer`, automatic optimisation),
`default` (this project's `Trainer`), `legacy` (a `train_epoch` override run by this project).
Each run is its own process; the styles are interleaved (A B C D E, repeated `--rounds` times)
and the median is reported, since absolute numbers drift between runs on shared machines.

    python bench/step_throughput.py                 # GPU: both models, markdown table + JSON
    python bench/step_throughput.py --quick         # CPU, a few steps: proves it runs (CI)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STYLES = ('raw', 'raw_item', 'lightning', 'default', 'legacy')
MODELS = ('cifar', 'resnet')


def make_model(name: str):
    from nets import CIFAR10Model, ResNetStyleModel
    return CIFAR10Model() if name == 'cifar' else ResNetStyleModel(width=64)


def synthetic_data(steps: int, batch: int):
    import torch
    count = steps * batch
    return torch.utils.data.TensorDataset(torch.randn(count, 3, 32, 32), torch.randint(0, 10, (count,)))


def loader(dataset, batch: int, device: str):
    import torch
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, drop_last=True, num_workers=2,
                                       pin_memory=device == 'cuda', persistent_workers=True)


def run_raw(model_name: str, steps: int, warmup: int, batch: int, device: str, sync_each_step: bool) -> float:
    import torch
    model = make_model(model_name).net.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    started = None
    for index, (data, target) in enumerate(loader(synthetic_data(steps, batch), batch, device)):
        if index == warmup:
            _sync(device)
            started = time.perf_counter()
        data, target = data.to(device, non_blocking=True), target.to(device, non_blocking=True)
        loss = criterion(model(data), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if sync_each_step:
            loss.item()
    _sync(device)
    return (steps - warmup) / (time.perf_counter() - started)


def _sync(device: str) -> None:
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def clock_callback(warmup: int, device: str):
    import lightning

    class Clock(lightning.Callback):
        started = finished = None
        steps = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warmup:
                _sync(device)
                Clock.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx >= warmup:
                Clock.steps += 1
                _sync(device) if batch_idx == trainer.num_training_batches - 1 else None
                Clock.finished = time.perf_counter()

    return Clock


def run_lightning(model_name: str, steps: int, warmup: int, batch: int, device: str) -> float:
    import lightning

    from compat.adapter import LernomaticModule
    clock = clock_callback(warmup, device)
    trainer = lightning.Trainer(max_epochs=1, accelerator='gpu' if device == 'cuda' else 'cpu', devices=1,
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[clock()])
    trainer.fit(LernomaticModule(make_model(model_name), learning_rate=1e-3),
                loader(synthetic_data(steps, batch), batch, device))
    return clock.steps / (clock.finished - clock.started)


def run_project(model_name: str, steps: int, warmup: int, batch: int, device: str, legacy: bool) -> float:
    from lernomatic.train.trainer import Trainer

    from hand_written import HandWrittenTrainer

    clock = clock_callback(warmup, device)
    trainer = (HandWrittenTrainer if legacy else Trainer)(
        make_model(model_name), train_dataset=synthetic_data(steps, batch), batch_size=batch, num_epochs=1,
        shuffle=False, num_workers=2, learning_rate=1e-3, weight_decay=0.0, device_id=0 if device == 'cuda' else -1,
        verbose=False, save_every=0, save_hist=False, logger=False, print_every=10 ** 9, callbacks=[clock()],
        checkpoint_dir='/tmp/step_bench')
    trainer.train()
    return clock.steps / (clock.finished - clock.started)


def worker(style: str, model_name: str, steps: int, warmup: int, batch: int, device: str) -> float:
    sys.path[:0] = [str(HERE.parent), str(HERE)]
    if style in ('raw', 'raw_item'):
        return run_raw(model_name, steps, warmup, batch, device, sync_each_step=style == 'raw_item')
    if style == 'lightning':
        return run_lightning(model_name, steps, warmup, batch, device)
    return run_project(model_name, steps, warmup, batch, device, legacy=style == 'legacy')


def table(medians: dict[str, dict[str, float]]) -> str:
    lines = ['| model | ' + ' | '.join(STYLES) + ' |', '| --- |' + ' --- |' * len(STYLES)]
    for model_name, rates in medians.items():
        cells = [f'{rates[s]:.0f} ({rates[s] / rates["raw"]:.2f}x)' for s in STYLES]
        lines.append(f'| {model_name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n\nsteps/s (ratio to `raw`); median of the rounds'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='CPU, a few steps, one round: proves the bench runs')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--warmup', type=int, default=30)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--out', type=Path, default=Path('step_throughput.json'))
    parser.add_argument('--worker', nargs=2, metavar=('STYLE', 'MODEL'), help=argparse.SUPPRESS)
    parser.add_argument('--device', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.warmup, args.batch, args.device = 1, 12, 4, 16, 'cpu'
    if args.worker:
        print(f'RATE {worker(args.worker[0], args.worker[1], args.steps, args.warmup, args.batch, args.device)}')
        return
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    runs: dict[str, dict[str, list[float]]] = {m: {s: [] for s in STYLES} for m in args.models}
    for _ in range(args.rounds):
        for model_name in args.models:
            for style in STYLES:
                command = [sys.executable, __file__, '--worker', style, model_name, '--steps', str(args.steps),
                           '--warmup', str(args.warmup), '--batch', str(args.batch), '--device', device]
                output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                rate = float(next(line for line in output.splitlines() if line.startswith('RATE')).split()[1])
                runs[model_name][style].append(rate)
                print(f'{model_name:7s} {style:10s} {rate:9.1f} steps/s', flush=True)
    medians = {m: {s: statistics.median(v) for s, v in styles.items()} for m, styles in runs.items()}
    print(table(medians))
    info = {'device': torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu', 'torch': torch.__version__,
            'date': time.strftime('%Y-%m-%d'), 'batch': args.batch, 'steps': args.steps, 'runs': runs,
            'median': medians}
    args.out.write_text(json.dumps(info, indent=1))


if __name__ == '__main__':
    main()

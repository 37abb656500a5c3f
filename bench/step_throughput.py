"""Training steps per second of the same model, data and optimizer in several styles, side by side.

Styles: `raw` (hand-written loop, no host sync), `raw_item` (the same with `loss.item()` each step,
as the original Lernomatic did), `lightning` (plain `lightning.Trainer`, automatic optimisation,
logging the loss each step as Lightning code does), `default` (this project's `Trainer`),
`legacy` (the raw loop as a `train_epoch` override run by this project), `fast` (the `Trainer`
with `cuda_graph=True`; GPU only). All read the same pinned batches through one DataLoader
(`batches.py`). Each run is its own process; the styles are interleaved (A..F, then F..A, for `--rounds`
rounds) and each ratio is the median of the per-round ratios, since absolute numbers drift.

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
STYLES = ('raw', 'raw_item', 'lightning', 'default', 'legacy', 'fast')
MODELS = ('cifar', 'resnet')


def make_model(name: str):
    from nets import CIFAR10Model, ResNetStyleModel
    return CIFAR10Model() if name == 'cifar' else ResNetStyleModel(width=64)


def run_raw(model_name: str, steps: int, warmup: int, batch: int, device: str, sync_each_step: bool) -> float:
    import torch
    from batches import batch_loader
    model = make_model(model_name).net.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    started = None
    for index, (data, target) in enumerate(batch_loader(steps, batch, device)):
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
    from batches import batch_loader

    from compat.adapter import LernomaticModule
    clock = clock_callback(warmup, device)
    trainer = lightning.Trainer(max_epochs=1, accelerator='gpu' if device == 'cuda' else 'cpu', devices=1,
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[clock()])
    trainer.fit(LernomaticModule(make_model(model_name), learning_rate=1e-3), batch_loader(steps, batch, device))
    return clock.steps / (clock.finished - clock.started)


def bench_trainer(base: type, steps: int) -> type:
    """`base` reading the shared batches: `_init_dataloaders` is where Lernomatic subclasses choose their data."""
    from batches import batch_loader

    class BenchTrainer(base):
        def _init_dataloaders(self) -> None:
            self.train_loader = batch_loader(steps, self.batch_size, self.device.type)
            self.val_loader = self.test_loader = None

    return BenchTrainer


def run_project(model_name: str, steps: int, warmup: int, batch: int, device: str, style: str) -> float | None:
    from lernomatic.train.trainer import Trainer

    from hand_written import HandWrittenTrainer

    if style == 'fast' and device != 'cuda':
        return None  # a CUDA graph needs a GPU
    clock = clock_callback(warmup, device)
    trainer = bench_trainer(HandWrittenTrainer if style == 'legacy' else Trainer, steps)(
        make_model(model_name), batch_size=batch, num_epochs=1, learning_rate=1e-3, weight_decay=0.0,
        device_id=0 if device == 'cuda' else -1, verbose=False, save_every=0, save_hist=False, logger=False,
        print_every=10 ** 9, callbacks=[clock()], checkpoint_dir='/tmp/step_bench', cuda_graph=style == 'fast')
    trainer.train()
    return clock.steps / (clock.finished - clock.started)


def worker(style: str, model_name: str, steps: int, warmup: int, batch: int, device: str) -> float | None:
    sys.path[:0] = [path for path in (str(HERE.parent), str(HERE)) if path not in sys.path]
    if style in ('raw', 'raw_item'):
        return run_raw(model_name, steps, warmup, batch, device, sync_each_step=style == 'raw_item')
    if style == 'lightning':
        return run_lightning(model_name, steps, warmup, batch, device)
    return run_project(model_name, steps, warmup, batch, device, style)


# (style, compared with, at least, models): the targets of issue 5, each a ratio from one run.
TARGETS = (('default', 'raw_item', 1.0, MODELS), ('default', 'lightning', 1.0, MODELS), ('default', 'raw', 0.9, MODELS),
           ('legacy', 'raw', 0.9, MODELS), ('fast', 'raw', 1.5, ('cifar',)))


Runs = dict[str, dict[str, list[float | None]]]  # model -> style -> steps/s per round


def ratio(runs: Runs, model_name: str, style: str, base: str) -> float | None:
    """Median over rounds of style/base within each round: neighbours in time, so drift cancels."""
    pairs = list(zip(runs[model_name][style], runs[model_name][base], strict=True))
    if not pairs or any(a is None or b is None for a, b in pairs):
        return None
    return statistics.median(a / b for a, b in pairs)


def table(runs: Runs) -> str:
    first = next(iter(runs.values()))
    lines = ['| model | ' + ' | '.join(first) + ' |', '| --- |' + ' --- |' * len(first)]
    for model_name, styles in runs.items():
        cells = []
        for style in styles:
            to_raw = ratio(runs, model_name, style, 'raw')
            cells.append('n/a (needs CUDA)' if to_raw is None else
                         f'{statistics.median(styles[style]):.0f} ({to_raw:.2f}x)')
        lines.append(f'| {model_name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n\nsteps/s, median of the rounds (ratio to `raw`: median of the per-round ratios)'


def target_report(runs: Runs) -> str:
    """Each target: the measured ratio, and by how much it is met or missed."""
    lines = ['| target | model | needs | measured | verdict |', '| --- | --- | --- | --- | --- |']
    for style, base, needed, models in TARGETS:
        for model_name in models:
            present = model_name in runs and style in runs[model_name] and base in runs[model_name]
            measured = ratio(runs, model_name, style, base) if present else None
            if measured is None:
                continue
            verdict = 'met' if measured >= needed else f'missed by {(needed - measured) / needed:.0%}'
            lines.append(f'| {style} vs {base} | {model_name} | >= {needed:.1f}x | {measured:.2f}x | {verdict} |')
    return '\n'.join(lines)


def run_worker(style: str, model_name: str, args: argparse.Namespace, device: str) -> float | None:
    command = [sys.executable, __file__, '--worker', style, model_name, '--steps', str(args.steps),
               '--warmup', str(args.warmup), '--batch', str(args.batch), '--device', device]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f'{style} on {model_name} failed:\n{done.stderr[-3000:]}')
    value = next(line for line in done.stdout.splitlines() if line.startswith('RATE')).split()[1]
    return None if value == 'None' else float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='CPU, a few steps, one round: proves the bench runs')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--steps', type=int, default=800)
    parser.add_argument('--warmup', type=int, default=50)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--styles', nargs='+', default=list(STYLES), choices=STYLES)
    parser.add_argument('--in-process', action='store_true',
                        help='run every style in this one process (no start-up per run; shares its warm state)')
    parser.add_argument('--out', type=Path, default=Path('step_throughput.json'))
    parser.add_argument('--worker', nargs=2, metavar=('STYLE', 'MODEL'), help=argparse.SUPPRESS)
    parser.add_argument('--device', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.warmup, args.batch, args.device = 1, 12, 4, 16, 'cpu'
    if args.worker:
        print(f'RATE {worker(args.worker[0], args.worker[1], args.steps, args.warmup, args.batch, args.device)}')
        return
    import lightning
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    styles = tuple(style for style in STYLES if style in args.styles or style == 'raw')
    runs: Runs = {m: {s: [] for s in styles} for m in args.models}

    def measure(style: str, model_name: str) -> float | None:
        if args.in_process:
            return worker(style, model_name, args.steps, args.warmup, args.batch, device)
        return run_worker(style, model_name, args, device)

    if not args.quick:
        measure('raw', args.models[0])  # a first run warms caches and clocks: not counted
    for round_index in range(args.rounds):
        order = styles if round_index % 2 == 0 else styles[::-1]  # A..F, F..A: a steady drift cancels out
        for model_name in args.models:
            for style in order:
                rate = measure(style, model_name)
                runs[model_name][style].append(rate)
                print(f'{model_name:7s} {style:10s} {rate if rate is not None else float("nan"):9.1f} steps/s',
                      flush=True)
    medians = {m: {s: None if None in v else statistics.median(v) for s, v in styles.items()}
               for m, styles in runs.items()}
    print(table(runs))
    print()
    print(target_report(runs))
    info = {'device': torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu', 'torch': torch.__version__,
            'lightning': lightning.__version__, 'date': time.strftime('%Y-%m-%d'), 'batch': args.batch,
            'steps': args.steps, 'warmup': args.warmup, 'rounds': args.rounds, 'runs': runs, 'median': medians}
    args.out.write_text(json.dumps(info, indent=1))


if __name__ == '__main__':
    main()

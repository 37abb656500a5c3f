"""Where one training step of the default `Trainer` spends its host time, by part of the loop.

On a GPU the small models are host-bound: the step rate is set by the Python that launches the
kernels, so a profile of the host thread shows where the time goes. cProfile slows Python-heavy
parts more than kernel launches, so the split is given as shares next to an unprofiled rate.

    python bench/profile_step.py                    # GPU if there is one: cifar, the defaults, collated data
    python bench/profile_step.py --model resnet --style legacy      # or fast, default_device, quiet ...
    python bench/profile_step.py --data batches --style quiet       # issue 5's setting: pinned batches, no logging

The styles are step_throughput.py's Trainer styles (`default` is the Trainer's defaults: logger
on, print_every=10; `quiet` turns the logging off). `--top N` also lists the N functions with the
most cumulative time, to find a part the table does not name.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
STYLE_CHOICES = ('default', 'default_device', 'fast', 'fast_device', 'legacy', 'quiet')

# Parts of a step: (label, file fragment, function name); each is the cumulative time of that call.
PARTS = (
    ('model forward', 'lernomatic/models/common.py', 'forward'),
    ('backward', 'torch/_tensor.py', 'backward'),
    ('optimizer step', 'torch/optim/', 'step'),
    ('captured step (CUDA graph)', 'compat/loop/captured_step.py', '__call__'),
    ('Lernomatic bookkeeping', 'compat/loop/bookkeeping.py', 'on_train_batch_end'),
    ('fetch batch', 'loops/fetchers.py', '__next__'),
    ('batch to device', 'pytorch/core/module.py', '_apply_batch_transfer_handler'),
    ('progress bar', 'callbacks/progress/', 'on_train_batch_end'),
    ('logger connector', 'logger_connector/logger_connector.py', 'update_train_step_metrics'),
)


def cumulative(stats: pstats.Stats, fragment: str, name: str) -> float:
    """Seconds spent in (and under) the function; the outermost where several match (they nest: a fetcher's
    `__next__` calls the loader's)."""
    return max((entry[3] for (path, _, function), entry in stats.stats.items()
                if function == name and fragment in path), default=0.0)


def run(model_name: str, steps: int, warmup: int, batch: int, device: str, style: str, data: str,
        profiler: cProfile.Profile | None) -> float:
    import tempfile

    import lightning
    from step_throughput import TRAINER_STYLES, bench_trainer, clock_callback, make_model

    from lernomatic.train.trainer import Trainer

    from hand_written import HandWrittenTrainer

    clock = clock_callback(warmup, device)

    class Profiled(lightning.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if profiler is not None and batch_idx == warmup:
                profiler.enable()

        def on_train_end(self, trainer, pl_module):
            if profiler is not None:
                profiler.disable()

    trainer = bench_trainer(HandWrittenTrainer if style == 'legacy' else Trainer, steps, data)(
        make_model(model_name), batch_size=batch, num_epochs=1, learning_rate=1e-3, weight_decay=0.0,
        device_id=0 if device == 'cuda' else -1, callbacks=[clock(), Profiled()],
        checkpoint_dir=tempfile.mkdtemp(prefix='profile_step_'), **TRAINER_STYLES[style])
    trainer.train()
    return clock.steps / (clock.finished - clock.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='cifar', choices=('cifar', 'resnet'))
    parser.add_argument('--style', default='default', choices=STYLE_CHOICES,
                        help="a Trainer style of step_throughput.py (default: the Trainer's defaults)")
    parser.add_argument('--data', default='collated', choices=('collated', 'batches'))
    parser.add_argument('--top', type=int, default=0, help='also list the N functions with most cumulative time')
    parser.add_argument('--steps', type=int, default=500)
    parser.add_argument('--warmup', type=int, default=50)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--device', default=None)
    parser.add_argument('--out', type=Path, default=None, help='write the split as JSON here')
    args = parser.parse_args()
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    options = (args.model, args.steps, args.warmup, args.batch, device, args.style, args.data)
    unprofiled = run(*options, profiler=None)
    profiler = cProfile.Profile()
    profiled_started = time.perf_counter()
    profiled_rate = run(*options, profiler=profiler)
    stats = pstats.Stats(profiler)
    measured = args.steps - args.warmup
    whole = 1 / profiled_rate  # wall time per step under the profiler
    split = {label: cumulative(stats, fragment, name) / measured for label, fragment, name in PARTS}
    split = {label: seconds for label, seconds in split.items() if seconds > 0}
    split["Lightning's loop and hooks, the loss (the rest)"] = max(whole - sum(split.values()), 0.0)
    print(f'{args.model}, {args.style} step on {device}: '
          f'{unprofiled:.0f} steps/s unprofiled ({1e6 / unprofiled:.0f} us/step)')
    print('| part of the step | share of host time | us/step under cProfile |')
    print('| --- | --- | --- |')
    for label, seconds in split.items():
        print(f'| {label} | {seconds / whole:.0%} | {seconds * 1e6:.0f} |')
    print(f'| whole step | 100% | {whole * 1e6:.0f} |')
    if args.top:
        stats.sort_stats('cumulative').print_stats(args.top)
    if args.out is not None:
        args.out.write_text(json.dumps({'model': args.model, 'style': args.style, 'device': device,
                                        'unprofiled_steps_per_s': unprofiled, 'profiled_us_per_step':
                                        {k: v * 1e6 for k, v in split.items()}, 'whole_us': whole * 1e6,
                                        'profiled_wall_s': time.perf_counter() - profiled_started}, indent=1))


if __name__ == '__main__':
    main()

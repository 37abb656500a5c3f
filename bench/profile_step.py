"""Where one training step of the default `Trainer` spends its host time, by part of the loop.

On a GPU the small models are host-bound: the step rate is set by the Python that launches the
kernels, so a profile of the host thread shows where the time goes. cProfile slows Python-heavy
parts more than kernel launches, so the split is given as shares next to an unprofiled rate.

    python bench/profile_step.py                    # GPU if there is one: cifar, default loop
    python bench/profile_step.py --model resnet --style legacy      # or --style fast (cuda_graph=True)
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

# Parts of a step: (label, file fragment, function name); each is the cumulative time of that call.
PARTS = (
    ('model forward', 'lernomatic/models/common.py', 'forward'),
    ('backward', 'torch/_tensor.py', 'backward'),
    ('optimizer step', 'torch/optim/', 'step'),
    ('captured step (CUDA graph)', 'compat/loop/captured_step.py', '__call__'),
    ('Lernomatic bookkeeping', 'compat/loop/bookkeeping.py', 'on_train_batch_end'),
    ('fetch batch', 'loops/fetchers.py', '__next__'),
    ('batch to device', 'pytorch/core/module.py', '_apply_batch_transfer_handler'),
)


def cumulative(stats: pstats.Stats, fragment: str, name: str) -> float:
    """Seconds spent in (and under) the function; the outermost call where it recurses."""
    return sum(entry[3] for (path, _, function), entry in stats.stats.items()
               if function == name and fragment in path)


def run(model_name: str, steps: int, warmup: int, batch: int, device: str, style: str,
        profiler: cProfile.Profile | None) -> float:
    import lightning
    from step_throughput import bench_trainer, clock_callback, make_model

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

    trainer = bench_trainer(HandWrittenTrainer if style == 'legacy' else Trainer, steps)(
        make_model(model_name), batch_size=batch, num_epochs=1, learning_rate=1e-3, weight_decay=0.0,
        device_id=0 if device == 'cuda' else -1, verbose=False, save_every=0, save_hist=False, logger=False,
        print_every=10 ** 9, callbacks=[clock(), Profiled()], checkpoint_dir='/tmp/step_bench',
        cuda_graph=style == 'fast')
    trainer.train()
    return clock.steps / (clock.finished - clock.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='cifar', choices=('cifar', 'resnet'))
    parser.add_argument('--style', default='default', choices=('default', 'legacy', 'fast'),
                        help="the Trainer's default loop, a hand-written train_epoch, or cuda_graph=True")
    parser.add_argument('--steps', type=int, default=500)
    parser.add_argument('--warmup', type=int, default=50)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--device', default=None)
    parser.add_argument('--out', type=Path, default=None, help='write the split as JSON here')
    args = parser.parse_args()
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    options = (args.model, args.steps, args.warmup, args.batch, device, args.style)
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
    if args.out is not None:
        args.out.write_text(json.dumps({'model': args.model, 'style': args.style, 'device': device,
                                        'unprofiled_steps_per_s': unprofiled, 'profiled_us_per_step':
                                        {k: v * 1e6 for k, v in split.items()}, 'whole_us': whole * 1e6,
                                        'profiled_wall_s': time.perf_counter() - profiled_started}, indent=1))


if __name__ == '__main__':
    main()

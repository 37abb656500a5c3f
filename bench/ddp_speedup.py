"""Samples per second of the ResNet-style net (width 128) on 1 GPU and on 2 GPUs (DDP, NCCL), same per-GPU batch.

`python bench/ddp_speedup.py --out results.json` runs each configuration in its own process, the
styles interleaved (1 GPU, 2 GPUs, repeated --rounds times), and reports the medians and the ratio.
Both the default loop (Lightning's DDP) and a hand-written loop (gradients averaged at each step) are
measured. Timings exclude the first --warmup steps of each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_one(devices: int, loop: str, batch: int, steps: int, warmup: int) -> float:
    """Train one epoch of `steps` steps per GPU in this process (rank 0 reports); returns samples/s."""
    sys.path[:0] = [str(HERE.parent), str(HERE)]
    import lightning
    import torch

    from lernomatic.train.trainer import Trainer

    from hand_written import HandWrittenTrainer
    from nets import ResNetStyleModel

    class Clock(lightning.Callback):
        started = finished = None
        counted = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warmup:
                torch.cuda.synchronize()
                Clock.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx >= warmup:
                Clock.counted += 1
            if batch_idx == trainer.num_training_batches - 1:
                torch.cuda.synchronize()
                Clock.finished = time.perf_counter()

    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    count = batch * steps * devices
    data = torch.utils.data.TensorDataset(torch.randn(count, 3, 32, 32), torch.randint(0, 10, (count,)))
    trainer_class = HandWrittenTrainer if loop == 'hand-written' else Trainer
    trainer = trainer_class(ResNetStyleModel(width=128), train_dataset=data, batch_size=batch, num_epochs=1,
                            num_workers=6,
                            accelerator='gpu', devices=devices, strategy='ddp' if devices > 1 else 'auto',
                            precision='bf16-mixed', learning_rate=1e-3, verbose=False, save_every=0,
                            save_hist=False, logger=False, callbacks=[Clock()], checkpoint_dir='/tmp/ddp_bench')
    trainer.train()
    return Clock.counted * batch * devices / (Clock.finished - Clock.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--batch', type=int, default=256, help='per-GPU batch')
    parser.add_argument('--steps', type=int, default=60, help='steps per GPU per run')
    parser.add_argument('--warmup', type=int, default=15)
    parser.add_argument('--out', type=Path, default=Path('ddp_speedup.json'))
    parser.add_argument('--worker', nargs=2, metavar=('DEVICES', 'LOOP'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        rate = run_one(int(args.worker[0]), args.worker[1], args.batch, args.steps, args.warmup)
        if int(os.environ.get('LOCAL_RANK', '0')) == 0:
            print(f'RATE {rate}', flush=True)
        return
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for loop in ('default', 'hand-written'):
            for devices in (1, 2):
                command = [sys.executable, __file__, '--worker', str(devices), loop, '--batch', str(args.batch),
                           '--steps', str(args.steps), '--warmup', str(args.warmup)]
                output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                rate = float(next(line for line in output.splitlines() if line.startswith('RATE')).split()[1])
                results.setdefault(f'{loop} x{devices}', []).append(rate)
                print(f'{loop:13s} {devices} GPU(s): {rate:9.0f} samples/s', flush=True)
    import torch
    summary = {'device': torch.cuda.get_device_name(0), 'torch': torch.__version__, 'per_gpu_batch': args.batch,
               'runs': results, 'median': {k: statistics.median(v) for k, v in results.items()}}
    for loop in ('default', 'hand-written'):
        summary[f'speedup {loop}'] = summary['median'][f'{loop} x2'] / summary['median'][f'{loop} x1']
        print(f'{loop}: 2 GPUs / 1 GPU = {summary[f"speedup {loop}"]:.2f}x')
    args.out.write_text(json.dumps(summary, indent=1))


if __name__ == '__main__':
    main()

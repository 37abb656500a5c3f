"""Samples per second of the ResNet-style net on 1 device and on N (DDP), same per-device batch, for both loops.

`python bench/ddp_speedup.py --devices 2 --out results.json` runs each configuration in its own
process, interleaved (1 device, N devices, each loop, repeated --rounds times), and reports the
medians and the ratios. The default loop runs on Lightning's DDP; the hand-written loop
(`bench/hand_written.py`, plain `loss.backward()` and `optimizer.step()`) on one
`DistributedDataParallel` per network driven from its forward (`compat.loop.ddp`); for it the run
also reports how many parameter gradients needed the step's own all-reduce (0: DDP's reducer did
all the averaging). Timings exclude the first --warmup steps of each run.

`--quick` is the same on the CPU (gloo, one thread a process, a narrow net, few steps): it checks the bench end to end
in CI; its timings say nothing about GPUs.
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
LOOPS = ('default', 'hand-written')


def run_one(devices: int, loop: str, args: argparse.Namespace) -> dict:
    """Train one epoch of `args.steps` steps per device in this process; returns samples/s and the fallbacks."""
    sys.path[:0] = [str(HERE.parent), str(HERE)]
    import lightning
    import torch

    from lernomatic.train.trainer import Trainer

    from hand_written import HandWrittenTrainer
    from nets import ResNetStyleModel

    on_gpu = not args.quick
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)

    class Clock(lightning.Callback):
        started = finished = 0.0
        counted = 0
        fallback_params: int | None = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == args.warmup:
                sync()
                Clock.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx >= args.warmup:
                Clock.counted += 1
            if batch_idx == trainer.num_training_batches - 1:
                sync()
                Clock.finished = time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            held = getattr(pl_module, 'data_parallel', None)
            Clock.fallback_params = None if held is None else held.fallback_params

    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    count = args.batch * args.steps * devices
    data = torch.utils.data.TensorDataset(torch.randn(count, 3, 32, 32), torch.randint(0, 10, (count,)))
    trainer_class = HandWrittenTrainer if loop == 'hand-written' else Trainer
    trainer = trainer_class(ResNetStyleModel(width=args.width), train_dataset=data, batch_size=args.batch,
                            num_epochs=1, num_workers=args.workers, accelerator='gpu' if on_gpu else 'cpu',
                            devices=devices, strategy='ddp' if devices > 1 else 'auto',
                            precision='bf16-mixed' if on_gpu else '32-true', learning_rate=1e-3, verbose=False,
                            save_every=0, save_hist=False, logger=False, callbacks=[Clock()],
                            checkpoint_dir=os.path.join(args.scratch, 'checkpoint'))
    trainer.train()
    rate = Clock.counted * args.batch * devices / (Clock.finished - Clock.started)
    return {'rate': rate, 'fallback_params': Clock.fallback_params}


def worker_command(devices: int, loop: str, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, __file__, '--worker', str(devices), loop, '--batch', str(args.batch), '--steps',
               str(args.steps), '--warmup', str(args.warmup), '--width', str(args.width), '--workers',
               str(args.workers), '--scratch', args.scratch]
    return command + (['--quick'] if args.quick else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--devices', type=int, default=2, help='devices of the data-parallel runs')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--batch', type=int, default=256, help='per-device batch')
    parser.add_argument('--steps', type=int, default=60, help='steps per device per run')
    parser.add_argument('--warmup', type=int, default=15)
    parser.add_argument('--width', type=int, default=128, help="the ResNet-style net's first stage width")
    parser.add_argument('--workers', type=int, default=6, help='DataLoader workers per process')
    parser.add_argument('--quick', action='store_true', help='on the CPU (gloo), a narrow net, a few steps')
    parser.add_argument('--scratch', default='/tmp/ddp_bench', help=argparse.SUPPRESS)
    parser.add_argument('--out', type=Path, default=Path('ddp_speedup.json'))
    parser.add_argument('--worker', nargs=2, metavar=('DEVICES', 'LOOP'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = run_one(int(args.worker[0]), args.worker[1], args)
        if int(os.environ.get('LOCAL_RANK', '0')) == 0:
            print(f'RESULT {json.dumps(result)}', flush=True)
        return
    if args.quick:
        args.rounds, args.batch, args.steps, args.warmup, args.width, args.workers = 1, 8, 20, 5, 8, 0
    # one CPU thread a process: N processes use N cores, as N GPUs are N devices
    env = dict(os.environ, OMP_NUM_THREADS='1') if args.quick else None
    results: dict[str, list[float]] = {}
    fallbacks: dict[str, int | None] = {}
    for _ in range(args.rounds):
        for loop in LOOPS:
            for devices in (1, args.devices):
                output = subprocess.run(worker_command(devices, loop, args), capture_output=True, text=True,
                                        check=True, env=env).stdout
                result = json.loads(next(line for line in output.splitlines() if line.startswith('RESULT'))[7:])
                results.setdefault(f'{loop} x{devices}', []).append(result['rate'])
                fallbacks[f'{loop} x{devices}'] = result['fallback_params']
                print(f'{loop:13s} {devices} device(s): {result["rate"]:9.0f} samples/s', flush=True)
    import torch
    device = 'cpu (gloo)' if args.quick else torch.cuda.get_device_name(0)
    summary: dict = {'device': device, 'torch': torch.__version__, 'devices': args.devices,
                     'per_device_batch': args.batch, 'runs': results, 'fallback_params': fallbacks,
                     'median': {k: statistics.median(v) for k, v in results.items()}}
    print(f'\n| loop | 1 device | {args.devices} devices | speed-up |\n| --- | --- | --- | --- |')
    for loop in LOOPS:
        one, many = summary['median'][f'{loop} x1'], summary['median'][f'{loop} x{args.devices}']
        summary[f'speedup {loop}'] = many / one
        print(f'| {loop} | {one:.0f} | {many:.0f} | {many / one:.2f}x |')
    args.out.write_text(json.dumps(summary, indent=1))


if __name__ == '__main__':
    main()

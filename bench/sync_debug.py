"""No host sync per step: the Trainer styles of the benchmark under CUDA's sync debug mode set to 'error'.

Each style (`default`, `default_device`, `fast`, `fast_device`, `fast_cyclic`, as in
`step_throughput.py`: the Trainer's defaults, `print_every=10` and the TensorBoard logger included)
trains one epoch over the benchmark's collating loader in its own process. From batch `--first`
(after the warm-up and, with `cuda_graph=True`, the capture) until the start of batch `--last`,
`torch.cuda.set_sync_debug_mode('error')` is on without a break: the steps, the fetch and
transfer of the next batch, every callback (the bookkeeping's `print_every` reports among them)
and Lightning's loop between them. A host sync anywhere there raises, and the script reports the
frames that made it. The epoch's end (checkpoint, history file, the last reports) is outside the
window: it reads values on purpose.

    python bench/sync_debug.py                      # GPU: the five styles, cifar, about a minute
    python bench/sync_debug.py --model resnet --styles fast fast_cyclic
On the CPU it runs the same trainers without the debug mode (there is no CUDA to watch): a smoke test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
STYLES = ('default', 'default_device', 'fast', 'fast_device', 'fast_cyclic')


def sync_window(first: int, last: int, device: str):
    """A Lightning callback class that keeps the sync debug mode at 'error' from batch `first` to batch `last`."""
    import lightning
    import torch

    class SyncWindow(lightning.Callback):
        watched = 0  # batches that started inside the window

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if device != 'cuda':
                SyncWindow.watched += first <= batch_idx < last
                return
            if batch_idx == first:
                torch.cuda.synchronize()  # what came before is not the window's
                torch.cuda.set_sync_debug_mode('error')
            elif batch_idx == last:
                torch.cuda.set_sync_debug_mode('default')
            if first <= batch_idx < last:
                SyncWindow.watched += 1

    return SyncWindow


def sync_error(error: BaseException | None) -> BaseException | None:
    """The error torch's sync debug check raised, where `error` is it or was raised from or during it."""
    while error is not None:
        if 'synchronizing CUDA operation' in str(error):
            return error
        error = error.__cause__ or error.__context__
    return None


def where(error: BaseException, frames: int = 8) -> list[str]:
    """The innermost frames of the error, `file:line function`, to say which code synced."""
    summary = traceback.extract_tb(error.__traceback__)[-frames:]
    return [f'{Path(frame.filename).name}:{frame.lineno} {frame.name}' for frame in summary]


def check_style(style: str, model_name: str, steps: int, batch: int, first: int, last: int,
                device: str) -> dict:
    """Train `style` for one epoch of `steps` batches; what the window saw: batches watched, or the sync."""
    sys.path[:0] = [path for path in (str(HERE.parent), str(HERE)) if path not in sys.path]
    import torch
    from step_throughput import TRAINER_STYLES, attach_cyclic_schedule, bench_trainer, make_model

    from lernomatic.train.trainer import Trainer

    options = dict(TRAINER_STYLES[style])
    if device != 'cuda':
        options['cuda_graph'] = False
    window = sync_window(first, last, device)
    files = tempfile.mkdtemp(prefix='sync_debug_')
    try:
        trainer = bench_trainer(Trainer, steps, 'collated')(
            make_model(model_name), batch_size=batch, num_epochs=1, learning_rate=1e-3, weight_decay=0.0,
            device_id=0 if device == 'cuda' else -1, checkpoint_dir=files, callbacks=[window()], **options)
        if style == 'fast_cyclic':
            attach_cyclic_schedule(trainer)
        trainer.train()
    except Exception as error:
        synced = sync_error(error) if device == 'cuda' else None
        if synced is None:
            raise
        return {'style': style, 'synced': True, 'watched': window.watched, 'error': str(synced).splitlines()[0],
                'where': where(synced)}
    finally:
        if device == 'cuda':
            torch.cuda.set_sync_debug_mode('default')
        shutil.rmtree(files, ignore_errors=True)
    return {'style': style, 'synced': False, 'watched': window.watched, 'debug_mode': device == 'cuda'}


def run_style(style: str, args: argparse.Namespace, device: str) -> dict:
    """`check_style` in a process of its own: a failed capture or sync leaves nothing behind for the next style."""
    command = [sys.executable, __file__, '--worker', style, '--model', args.model, '--steps', str(args.steps),
               '--batch', str(args.batch), '--first', str(args.first), '--last', str(args.last), '--device', device]
    done = subprocess.run(command, capture_output=True, text=True)
    line = next((line for line in done.stdout.splitlines() if line.startswith('RESULT ')), None)
    if done.returncode != 0 or line is None:
        return {'style': style, 'failed': True, 'stderr': done.stderr[-2000:]}
    return json.loads(line[len('RESULT '):])


def report(result: dict) -> str:
    style = result['style']
    if result.get('failed'):
        return f'{style}: FAILED (not a sync):\n{result["stderr"]}'
    if result['synced']:
        return (f'{style}: HOST SYNC within the window (after {result["watched"]} batches): {result["error"]}\n    '
                + '\n    '.join(result['where']))
    if not result['debug_mode']:
        return f'{style}: ran {result["watched"]} batches of the window (no CUDA here: no debug mode, no graph)'
    return f"{style}: no host sync in {result['watched']} batches under sync debug mode 'error'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='cifar', choices=('cifar', 'resnet'))
    parser.add_argument('--styles', nargs='+', default=list(STYLES), choices=STYLES)
    parser.add_argument('--steps', type=int, default=120, help='batches in the epoch')
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--first', type=int, default=20, help='first batch in the window (after warm-up, capture)')
    parser.add_argument('--last', type=int, default=100, help='the window ends as this batch starts '
                        '(before the epoch-end checkpoint at batch steps-2)')
    parser.add_argument('--out', type=Path, default=None, help='write the results as JSON here')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--device', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.first < args.last <= args.steps - 2:
        parser.error('need 0 < --first < --last <= --steps - 2 (the checkpoint at the epoch end syncs on purpose)')
    if args.worker:
        result = check_style(args.worker, args.model, args.steps, args.batch, args.first, args.last, args.device)
        print('RESULT ' + json.dumps(result))
        return
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    results = [run_style(style, args, device) for style in args.styles]
    for result in results:
        print(report(result), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps({'model': args.model, 'device': device, 'steps': args.steps,
                                        'window': [args.first, args.last], 'results': results}, indent=1))
    if any(result.get('failed') or result.get('synced') for result in results):
        sys.exit(1)


if __name__ == '__main__':
    main()

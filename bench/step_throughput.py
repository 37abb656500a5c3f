"""Training steps per second of the same model, data and optimizer in the styles users run, side by side.

Data (`--data`): `collated` (default) is a `TensorDataset` of CIFAR-shaped samples in a plain
`DataLoader(batch_size=128, shuffle=True)` that collates sample by sample, the same loader for
every style; `batches` is whole batches made once in pinned memory (`batches.py`), which times the
step without the collation.

Styles, each run in its own process:
- `raw`: a hand-written loop, no host sync; `raw_item`: the same with `loss.item()` each step, as
  the original Lernomatic recorded losses.
- `lightning`: a plain `lightning.Trainer` (automatic optimisation, the loss logged each step).
- `default`: this project's `Trainer` with its defaults as users run them (the TensorBoard logger,
  `print_every=10`, INFO messages, a checkpoint and the history file once an epoch), but
  `data_on_device=False`, so it reads the collating loader; `default_device`: the same with
  `data_on_device` on (its default): the TensorDataset kept on the GPU, batches gathered there.
- `fast`, `fast_device`: the same two with `cuda_graph=True`; `fast_cyclic`: `fast_device` with a
  per-iteration cyclic learning rate (`TriangularScheduler`, set with `set_lr_scheduler` as the
  original's scripts do); with `--data batches`, where no data goes to the device, it is `fast`
  with the schedule. It is compared with that twin without the schedule.
- `legacy`: the raw loop as a `train_epoch` override (`hand_written.py`) on the defaults, reading
  the collating loader (`data_on_device=False`).
- `graph`: the whole step captured by hand in one CUDA graph over the same loader (`graph_step.py`),
  the reference for `cuda_graph=True`.
- `quiet` (only when asked for): the `Trainer` as issue 5 measured it: no logger, no messages,
  no checkpoint or history file, `print_every` out of reach.
Every style trains the same net with Adam (lr 1e-3, no weight decay) and cross-entropy; the
Trainer styles change nothing else of the Trainer's defaults except where its files go.

The styles are interleaved (A..Z, then Z..A, for `--rounds` rounds) after one untimed warm-up
process, and each ratio is the median of the per-round ratios, since absolute numbers drift. It
prints the steps/s table, the targets of issue 16 (and of issue 5) with verdicts, and writes every
run to JSON. On the CPU the CUDA-graph styles run their code without a graph and report no rate.

    python bench/step_throughput.py --models cifar --out cifar.json     # GPU, about 3 minutes
    python bench/step_throughput.py --quick --data collated --models cifar   # CPU, a few steps (CI)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STYLES = ('raw', 'raw_item', 'lightning', 'default', 'default_device', 'fast', 'fast_device', 'fast_cyclic',
          'legacy', 'graph', 'quiet')
DEFAULT_STYLES = {'collated': STYLES[:-1], 'batches': ('raw', 'raw_item', 'lightning', 'default', 'legacy', 'fast')}
MODELS = ('cifar', 'resnet')
DATA = ('collated', 'batches')
STEPS = {'collated': 400, 'batches': 800}  # batches per run, warm-up included; 400 of 128: about a CIFAR-10 epoch
# Batches each epoch has after the timed ones: what the defaults do once an epoch (a checkpoint at batch
# len-1, the history file, waiting for the last reports) falls after the timed window, for every style.
EPOCH_TAIL = 2
CUDA_GRAPH_STYLES = frozenset({'fast', 'fast_device', 'fast_cyclic', 'graph'})
DEVICE_DATA_STYLES = frozenset({'default_device', 'fast_device'})  # nothing to keep on the device with `batches`

# What each project Trainer style sets; everything not named is the Trainer's default (see the module doc).
TRAINER_STYLES: dict[str, dict] = {
    'default': {'data_on_device': False},
    'default_device': {},
    'fast': {'cuda_graph': True, 'data_on_device': False},
    'fast_device': {'cuda_graph': True},
    'fast_cyclic': {'cuda_graph': True},
    'legacy': {'data_on_device': False},
    'quiet': {'data_on_device': False, 'logger': False, 'verbose': False, 'print_every': 10 ** 9, 'save_every': 0,
              'save_hist': False},
}
CYCLIC = {'lr_min': 1e-4, 'lr_max': 1e-3, 'stepsize': 50}  # a new learning rate every iteration, 4 cycles a run


def make_model(name: str):
    from nets import CIFAR10Model, ResNetStyleModel
    return CIFAR10Model() if name == 'cifar' else ResNetStyleModel(width=64)


def run_raw(model_name: str, loader, steps: int, warmup: int, device: str, sync_each_step: bool) -> float:
    """The hand-written loop: `.to(device)`, forward, loss, zero_grad, backward, step (and `loss.item()`)."""
    import torch
    model = make_model(model_name).net.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    started = None
    for index, (data, target) in enumerate(loader):
        if index == steps:
            break  # the epoch's tail is not timed (EPOCH_TAIL)
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


def clock_callback(warmup: int, device: str, steps: int | None = None):
    """A Lightning callback class timing batches `warmup` to `steps - 1` (None: to the epoch's last batch)."""
    import lightning

    class Clock(lightning.Callback):
        started = finished = None
        steps = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warmup:
                _sync(device)
                Clock.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            last = trainer.num_training_batches - 1 if steps is None else steps - 1
            if warmup <= batch_idx <= last:
                Clock.steps += 1
                _sync(device) if batch_idx == last else None
                Clock.finished = time.perf_counter()

    return Clock


def run_lightning(model_name: str, loader, steps: int, warmup: int, device: str) -> float:
    import lightning

    from compat.adapter import LernomaticModule
    clock = clock_callback(warmup, device, steps)
    trainer = lightning.Trainer(max_epochs=1, accelerator='gpu' if device == 'cuda' else 'cpu', devices=1,
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[clock()])
    trainer.fit(LernomaticModule(make_model(model_name), learning_rate=1e-3), loader)
    return clock.steps / (clock.finished - clock.started)


def bench_trainer(base: type, batches: int, data: str = 'batches') -> type:
    """`base` reading a bench loader of `batches` batches: `_init_dataloaders` is where subclasses choose data."""
    from batches import make_loader

    class BenchTrainer(base):
        def _init_dataloaders(self) -> None:
            self.train_loader = make_loader(data, batches, self.batch_size, self.device.type)
            self.val_loader = self.test_loader = None

    return BenchTrainer


def attach_cyclic_schedule(trainer) -> None:
    """A per-iteration triangular learning rate, attached after construction as the original's scripts did."""
    from lernomatic.train.schedule import TriangularScheduler
    trainer.set_lr_scheduler(TriangularScheduler(**CYCLIC))


def run_project(model_name: str, steps: int, warmup: int, batch: int, device: str, style: str,
                data: str) -> tuple[float | None, str]:
    """A project Trainer style; on the CPU a CUDA-graph style trains without the graph and reports no rate."""
    from lernomatic.train.trainer import Trainer

    from hand_written import HandWrittenTrainer

    options = dict(TRAINER_STYLES[style])
    no_graph_here = options.get('cuda_graph', False) and device != 'cuda'
    if no_graph_here:
        options['cuda_graph'] = False
    clock = clock_callback(warmup, device, steps)
    files = tempfile.mkdtemp(prefix='step_bench_')  # checkpoints, history file and TensorBoard logs of the run
    try:
        trainer = bench_trainer(HandWrittenTrainer if style == 'legacy' else Trainer, steps + EPOCH_TAIL, data)(
            make_model(model_name), batch_size=batch, num_epochs=1, learning_rate=1e-3, weight_decay=0.0,
            device_id=0 if device == 'cuda' else -1, checkpoint_dir=files, callbacks=[clock()], **options)
        if style == 'fast_cyclic':
            attach_cyclic_schedule(trainer)
        trainer.train()
    finally:
        shutil.rmtree(files, ignore_errors=True)
    if no_graph_here:
        return None, f'{style}: cuda_graph=True needs CUDA; its Trainer ran without the graph here (not reported)'
    return clock.steps / (clock.finished - clock.started), ''


def run_hand_graph(model_name: str, loader, steps: int, warmup: int, device: str) -> tuple[float | None, str]:
    from graph_step import run_graph
    rate = run_graph(make_model(model_name).net, loader, steps, warmup, device)
    note = '' if rate is not None else 'graph: a CUDA graph needs CUDA; its loop ran eagerly here (not reported)'
    return rate, note


def worker(style: str, model_name: str, steps: int, warmup: int, batch: int, device: str,
           data: str = 'batches') -> tuple[float | None, str]:
    """One run of one style: (steps per second or None where it cannot be timed here, a note or '')."""
    sys.path[:0] = [path for path in (str(HERE.parent), str(HERE)) if path not in sys.path]
    if style in TRAINER_STYLES:
        return run_project(model_name, steps, warmup, batch, device, style, data)
    from batches import make_loader
    loader = make_loader(data, steps + EPOCH_TAIL, batch, device)
    if style == 'graph':
        return run_hand_graph(model_name, loader, steps, warmup, device)
    if style == 'lightning':
        return run_lightning(model_name, loader, steps, warmup, device), ''
    return run_raw(model_name, loader, steps, warmup, device, sync_each_step=style == 'raw_item'), ''


Runs = dict[str, dict[str, list[float | None]]]  # model -> style -> steps/s per round
FAILED = 'FAILED'  # how a note about a run that raised begins


def cyclic_twin(styles) -> str:
    """What `fast_cyclic` is compared with: the same settings without the schedule."""
    return 'fast_device' if 'fast_device' in styles else 'fast'


# (style, compared with, at least, models): each a ratio from one interleaved run.
ISSUE16_TARGETS = (('default', 'raw_item', 1.0, MODELS), ('fast', 'graph', 0.9, MODELS),
                   ('fast_device', 'graph', 2.0, ('cifar',)), ('default_device', 'raw', 1.5, MODELS),
                   ('fast_cyclic', cyclic_twin, 0.9, MODELS))
ISSUE5_TARGETS = (('default', 'raw_item', 1.0, MODELS), ('default', 'lightning', 1.0, MODELS),
                  ('default', 'raw', 0.9, MODELS), ('legacy', 'raw', 0.9, MODELS), ('fast', 'raw', 1.5, ('cifar',)))


def ratio(runs: Runs, model_name: str, style: str, base: str) -> float | None:
    """Median over rounds of style/base within each round: neighbours in time, so drift cancels."""
    pairs = list(zip(runs[model_name][style], runs[model_name][base], strict=True))
    if not pairs or any(a is None or b is None for a, b in pairs):
        return None
    return statistics.median(a / b for a, b in pairs)


def table(runs: Runs, failed: set[tuple[str, str]]) -> str:
    """Steps/s per model and style, with the ratio to `raw`; 'FAILED' or 'n/a' where a style has no rate."""
    first = next(iter(runs.values()))
    lines = ['| model | ' + ' | '.join(first) + ' |', '| --- |' + ' --- |' * len(first)]
    for model_name, styles in runs.items():
        cells = []
        for style in styles:
            to_raw = ratio(runs, model_name, style, 'raw')
            cells.append('FAILED' if (model_name, style) in failed else 'n/a (needs CUDA)' if to_raw is None else
                         f'{statistics.median(styles[style]):.0f} ({to_raw:.2f}x)')
        lines.append(f'| {model_name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n\nsteps/s, median of the rounds (ratio to `raw`: median of the per-round ratios)'


def target_rows(runs: Runs, targets) -> list[str]:
    """One markdown row per target and model: the measured ratio, and by how much it is met or missed."""
    rows = []
    for style, base, needed, models in targets:
        for model_name in models:
            styles = runs.get(model_name, {})
            compared = base(styles) if callable(base) else base
            if style not in styles or compared not in styles:
                continue
            measured = ratio(runs, model_name, style, compared)
            if measured is None:
                rows.append(f'| {style} vs {compared} | {model_name} | >= {needed:.1f}x | n/a | not measured |')
                continue
            verdict = 'met' if measured >= needed else f'missed by {(needed - measured) / needed:.0%}'
            rows.append(f'| {style} vs {compared} | {model_name} | >= {needed:.1f}x | {measured:.2f}x | {verdict} |')
    return rows


def target_report(runs: Runs, data: str) -> str:
    """Issue 16's targets; with pinned batches also issue 5's (set for that data). Tables with no rows are left out."""
    head = ['| target | model | needs | measured | verdict |', '| --- | --- | --- | --- | --- |']
    tables = [(f'Targets of issue 16 (--data {data}; issue 16 sets them for --data collated)', ISSUE16_TARGETS)]
    if data == 'batches':
        tables.append(("Targets of issue 5 (pinned batches; issue 5 measured the Trainer as `quiet` runs it, "
                       '`default` here runs its defaults)', ISSUE5_TARGETS))
    parts = []
    for title, targets in tables:
        rows = target_rows(runs, targets)
        if rows:
            parts.append('\n'.join([title, '', *head, *rows]))
    return '\n\n'.join(parts) or 'no target has both its styles in this run'


def run_worker(style: str, model_name: str, args: argparse.Namespace, device: str) -> tuple[float | None, str]:
    command = [sys.executable, __file__, '--worker', style, model_name, '--steps', str(args.steps),
               '--warmup', str(args.warmup), '--batch', str(args.batch), '--device', device, '--data', args.data]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:  # the other styles still run: one GPU session should not be lost to one style
        print(done.stderr[-3000:], file=sys.stderr)
        return None, f'{FAILED} {style} on {model_name}: {_last_line(done.stderr)}'
    lines = done.stdout.splitlines()
    value = next(line for line in lines if line.startswith('RATE ')).split()[1]
    note = next((line[5:] for line in lines if line.startswith('NOTE ')), '')
    return None if value == 'None' else float(value), note


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else 'no message'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='CPU, a few steps, one round: proves the bench runs')
    parser.add_argument('--data', default='collated', choices=DATA,
                        help='collated: a TensorDataset collated per sample (default); batches: pinned whole batches')
    parser.add_argument('--rounds', type=int, default=2, help='A..Z then Z..A, and so on')
    parser.add_argument('--budget-s', type=float, default=None,
                        help='start no round that would end past this many seconds (one round always runs)')
    parser.add_argument('--steps', type=int, default=None, help='batches per run (one epoch); default 400 '
                        'collated, 800 batches')
    parser.add_argument('--warmup', type=int, default=50, help='first batches not timed')
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--styles', nargs='+', default=None, choices=STYLES,
                        help='default: all but quiet (collated); raw always runs')
    parser.add_argument('--in-process', action='store_true',
                        help='run every style in this one process (no start-up per run; shares its warm state)')
    parser.add_argument('--out', type=Path, default=Path('step_throughput.json'))
    parser.add_argument('--worker', nargs=2, metavar=('STYLE', 'MODEL'), help=argparse.SUPPRESS)
    parser.add_argument('--device', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = STEPS[args.data]
    if args.quick:
        args.rounds, args.steps, args.warmup, args.batch, args.device = 1, 12, 4, 16, 'cpu'
    return args


def chosen_styles(args: argparse.Namespace) -> tuple[str, ...]:
    """The styles to run, in table order: `raw` always (the ratios' base); device-data ones only when collated."""
    wanted = set(args.styles or DEFAULT_STYLES[args.data]) | {'raw'}
    if args.data == 'batches' and wanted & DEVICE_DATA_STYLES:
        print(f'skipped {sorted(wanted & DEVICE_DATA_STYLES)}: pinned batches are no in-memory dataset '
              '(use --data collated)')
        wanted -= DEVICE_DATA_STYLES
    return tuple(style for style in STYLES if style in wanted)


class Session:
    """The runs of one invocation, written to JSON after every run, so a run cut short keeps what it measured."""

    def __init__(self, args: argparse.Namespace, device: str, styles: tuple[str, ...]) -> None:
        import lightning
        import torch
        self.args, self.device, self.styles = args, device, styles
        self.runs: Runs = {m: {s: [] for s in styles} for m in args.models}
        self.walls: dict[str, dict[str, list[float]]] = {m: {s: [] for s in styles} for m in args.models}
        self.notes: set[str] = set()
        self.failed: set[tuple[str, str]] = set()
        self.rounds_done = 0
        self.begun = time.perf_counter()
        self.info = {'device': torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu',
                     'torch': torch.__version__, 'lightning': lightning.__version__, 'date': time.strftime('%Y-%m-%d'),
                     'data': args.data, 'batch': args.batch, 'steps': args.steps, 'warmup': args.warmup,
                     'epoch_tail': EPOCH_TAIL, 'in_process': args.in_process, 'trainer_styles': TRAINER_STYLES,
                     'cyclic_schedule': CYCLIC}

    def measure(self, style: str, model_name: str) -> tuple[float | None, str]:
        args = self.args
        if not args.in_process:
            return run_worker(style, model_name, args, self.device)
        try:
            return worker(style, model_name, args.steps, args.warmup, args.batch, self.device, args.data)
        except Exception as error:  # noqa: BLE001 - reported with the table; the other styles still run
            return None, f'{FAILED} {style} on {model_name}: {type(error).__name__}: {str(error)[:300]}'

    def record(self, style: str, model_name: str) -> None:
        """One timed run of `style`, printed and saved."""
        started = time.perf_counter()
        rate, note = self.measure(style, model_name)
        self.walls[model_name][style].append(time.perf_counter() - started)
        self.runs[model_name][style].append(rate)
        self.notes.add(note)
        if note.startswith(FAILED):
            self.failed.add((model_name, style))
        print(f'{model_name:7s} {style:15s} {rate if rate is not None else float("nan"):9.1f} steps/s '
              f'({self.walls[model_name][style][-1]:.1f} s in all)', flush=True)
        self.save(partial=True)

    def complete_runs(self) -> Runs:
        """The rounds every style finished: a round cut short is left out of the table."""
        return {m: {s: rates[:self.rounds_done] for s, rates in styles.items()} for m, styles in self.runs.items()}

    def save(self, partial: bool) -> None:
        runs = self.complete_runs() if not partial else self.runs
        medians = {m: {s: None if not v or None in v else statistics.median(v) for s, v in styles.items()}
                   for m, styles in runs.items()}
        self.args.out.write_text(json.dumps({
            **self.info, 'partial': partial, 'rounds': self.rounds_done, 'runs': runs, 'median': medians,
            'process_wall_s': self.walls, 'wall_s': time.perf_counter() - self.begun,
            'notes': sorted(self.notes - {''})}, indent=1))


def run_rounds(session: Session) -> None:
    """A..Z, Z..A, ...: a steady drift cancels out. With `--budget-s`, no round starts that would end past it."""
    args = session.args
    if not args.quick:
        session.measure('raw', args.models[0])  # a first run warms caches and clocks: not counted
    for round_index in range(args.rounds):
        round_started = time.perf_counter()
        order = session.styles if round_index % 2 == 0 else session.styles[::-1]
        for model_name in args.models:
            for style in order:
                session.record(style, model_name)
        session.rounds_done += 1
        elapsed, last_round = time.perf_counter() - session.begun, time.perf_counter() - round_started
        if args.budget_s and round_index + 1 < args.rounds and elapsed + last_round > args.budget_s:
            session.notes.add(f'stopped after {round_index + 1} of {args.rounds} rounds: another of about '
                              f'{last_round:.0f} s would end past --budget-s {args.budget_s:.0f} '
                              f'({elapsed:.0f} s so far)')
            break


def main() -> None:
    args = parse_args()
    if args.worker:
        rate, note = worker(args.worker[0], args.worker[1], args.steps, args.warmup, args.batch, args.device,
                            args.data)
        print(f'RATE {rate}')
        print(f'NOTE {note}' if note else '')
        return
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    session = Session(args, device, chosen_styles(args))
    if device != 'cuda' and CUDA_GRAPH_STYLES & set(session.styles):
        print(f'note: no CUDA here: {sorted(CUDA_GRAPH_STYLES & set(session.styles))} run their code without a '
              'CUDA graph and report no rate')
    run_rounds(session)
    session.save(partial=False)
    runs = session.complete_runs()
    for note in sorted(session.notes - {''}):
        print('note:', note)
    print(f'\n--data {args.data}, {args.steps} batches per run ({args.warmup} not timed, then {EPOCH_TAIL} '
          f'untimed at the end), batch {args.batch}, {session.rounds_done} rounds, '
          f'{time.perf_counter() - session.begun:.0f} s in all\n')
    print(table(runs, session.failed))
    print()
    print(target_report(runs, args.data))
    if session.failed:
        sys.exit(f'{len(session.failed)} style(s) failed: {sorted(session.failed)} (their errors above; the rest '
                 f'is in {args.out})')


if __name__ == '__main__':
    main()

"""The main job, run as a user runs it: a subprocess, default settings, real digits data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def test_train_digits_reaches_095_and_writes_its_files(tmp_path):
    script = REPO / 'examples' / 'train_digits.py'
    run = subprocess.run([sys.executable, str(script), '--quiet', '--out', str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith('val_acc=') and float(last.split('=')[1]) >= 0.95, run.stdout
    png = tmp_path / 'history.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000
    folder = tmp_path / 'checkpoint'
    history = torch.load(folder / 'digits_history.pkl')
    assert history['acc_iter'] == 12 and history['loss_iter'] == 12 * 22
    assert (folder / 'best_digits.pkl').is_file() and len(list(folder.glob('digits_epoch_*_iter_*.pkl'))) == 12
    assert list((folder / 'digits').glob('version_0/events.out.tfevents.*'))


def test_the_user_guides_sample_screen_is_what_a_run_prints(tmp_path):
    """docs/guide.md shows the main job's whole screen: the same lines, in the same order, numbers aside
    (losses and times differ between CPUs and runs)."""
    import re
    guide = (REPO / 'docs' / 'guide.md').read_text()
    command = 'python examples/train_digits.py --epochs 2 --out out'
    after = guide[guide.index(f'`{command}`'):]
    sample = after[after.index('```\n') + 4:after.index('\n```', after.index('```\n') + 4)]
    run = subprocess.run([sys.executable, str(REPO / 'examples' / 'train_digits.py'), '--epochs', '2', '--out', 'out'],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]

    def shape(lines: str) -> list[str]:
        return [re.sub(r'\d+\.\d+', '<x>', line) for line in lines.splitlines()]

    # our messages go to stderr and the script's own lines to stdout: the screen shows one, then the other
    assert shape(run.stderr + run.stdout) == shape(sample)

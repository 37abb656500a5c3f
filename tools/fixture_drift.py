"""How far this machine's plain PyTorch loop drifts from the numbers the original wrote elsewhere.

The fixture's histories, weights and Adam state were computed on one CPU; another vector width or
BLAS build rounds differently, by an ulp at first, and training carries that on. The tolerances in
tests/conftest.py (FIXTURE_TOLERANCE) are set with a wide margin over what this prints, measured
under each ATEN_CPU_CAPABILITY (docs/gpu.md lists the runs). Usage:

    ATEN_CPU_CAPABILITY=default python tools/fixture_drift.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

TESTS = Path(__file__).resolve().parents[1] / 'tests'
sys.path[:0] = [str(TESTS), str(TESTS / 'data' / 'original')]

import fixture_data  # noqa: E402
import fixture_nets  # noqa: E402
from helpers import plain_pytorch_run  # noqa: E402


def _drift(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    """The largest absolute and relative difference, and how many values differ at all."""
    difference = np.abs(ours - theirs)
    relative = difference / np.maximum(np.abs(theirs), np.finfo(np.float32).tiny)
    return {'max_abs': float(difference.max()), 'max_rel': float(relative.max()),
            'differing': int((difference > 0).sum()), 'count': int(difference.size)}


def main() -> None:
    original = TESTS / 'data' / 'original'
    expected = json.loads((original / 'expected.json').read_text())
    run = plain_pytorch_run(fixture_nets, fixture_data, expected, 3, torch.device('cpu'))
    checkpoint = torch.load(original / 'mlp_trainer_ck.pkl')
    report: dict[str, object] = {'capability': os.environ.get('ATEN_CPU_CAPABILITY', '(unset)'),
                                 'cpu_capability_used': torch.backends.cpu.get_cpu_capability()}
    for name in ('loss_history', 'val_loss_history', 'acc_history'):
        report[name] = _drift(np.array(run[name]), np.array(expected[name]))
    weights = checkpoint['model']['model_state_dict']
    report['weights'] = _drift(np.concatenate([run['state_dict'][k].numpy().ravel() for k in weights]),
                               np.concatenate([v.numpy().ravel() for v in weights.values()]))
    state = checkpoint['optim']['state']
    report['adam_state'] = _drift(
        np.concatenate([run['optim_state'][i][k].numpy().ravel() for i in state for k in ('exp_avg', 'exp_avg_sq')]),
        np.concatenate([state[i][k].numpy().ravel() for i in state for k in ('exp_avg', 'exp_avg_sq')]))
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()

"""The step-throughput bench runs end to end (`--quick`: CPU, a few steps; its timings mean nothing)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_step_throughput_quick(tmp_path):
    out = tmp_path / 'quick.json'
    run = subprocess.run([sys.executable, str(REPO / 'bench' / 'step_throughput.py'), '--quick', '--out', str(out)],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '| cifar |' in run.stdout and '| resnet |' in run.stdout
    result = json.loads(out.read_text())
    assert set(result['median']['cifar']) == {'raw', 'raw_item', 'lightning', 'default', 'legacy'}
    assert all(rate > 0 for rate in result['median']['cifar'].values())

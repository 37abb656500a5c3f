"""`lernomatic tensorboard`: the events it writes, and the real TensorBoard server it starts."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_cli import HISTORY, assert_user_error, cli_env, lernomatic

TAGS = {'loss/train', 'loss/val', 'acc/val'}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('localhost', 0))
        return probe.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _poll_tags(port: int, runs: set[str], process: subprocess.Popen, deadline_s: float = 120) -> dict:
    """GET /data/plugin/scalars/tags until every run shows every tag (TensorBoard loads events in the background)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert process.poll() is None, 'the server exited early'
        try:
            tags = _get_json(f'http://localhost:{port}/data/plugin/scalars/tags')
            if set(tags) == runs and all(set(tags[run]) == TAGS for run in runs):
                return tags
        except (urllib.error.URLError, ConnectionError):
            pass  # not listening yet
        time.sleep(0.5)
    raise AssertionError(f'TensorBoard on port {port} did not show runs {runs} within {deadline_s} s')


def _scalars(events_dir: Path, tag: str) -> list[float]:
    events = EventAccumulator(str(events_dir))
    events.Reload()
    return [event.value for event in events.Scalars(tag)]


def test_serves_each_history_as_a_run_on_a_real_server(tmp_path, expected):
    second = tmp_path / 'other_run.pkl'
    shutil.copy(HISTORY, second)
    port = _free_port()
    with open(tmp_path / 'out.txt', 'w') as out, open(tmp_path / 'err.txt', 'w') as err:
        server = subprocess.Popen([sys.executable, '-m', 'lernomatic', 'tensorboard', str(HISTORY), str(second),
                                   '--port', str(port)], stdout=out, stderr=err, env=cli_env())
    try:
        _poll_tags(port, {'mlp_history', 'other_run'}, server)
        points = _get_json(f'http://localhost:{port}/data/plugin/scalars/scalars?run=other_run&tag=acc/val')
        assert [step for _, step, _ in points] == [1, 2, 3]
        assert [value for _, _, value in points] == pytest.approx(expected['acc_history'])
        os.kill(server.pid, signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    out = (tmp_path / 'out.txt').read_text()
    assert f'TensorBoard at http://localhost:{port}/' in out
    logdir = Path(re.search(r'wrote TensorBoard events under (\S+) \(a temporary directory\)', out).group(1))
    assert not logdir.exists()  # the temporary directory went with the server
    assert 'Traceback' not in (tmp_path / 'err.txt').read_text()


def test_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(('localhost', 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = lernomatic('tensorboard', HISTORY, '--port', port, '--logdir', tmp_path / 'tb', check=False, timeout=120)
    line = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(line) == 1 and f'--port {port}' in line[0] and 'in use' in line[0], run.stderr


def test_no_serve_writes_and_exits_as_scripts_expect(tmp_path, expected):
    run = lernomatic('tensorboard', HISTORY, '--logdir', tmp_path / 'tb', '--no-serve', timeout=120)
    assert 'to see them: tensorboard --logdir' in run.stdout
    assert _scalars(tmp_path / 'tb' / 'mlp_history', 'acc/val') == pytest.approx(expected['acc_history'])
    assert len(_scalars(tmp_path / 'tb' / 'mlp_history', 'loss/train')) == 30
    assert len(_scalars(tmp_path / 'tb' / 'mlp_history', 'loss/val')) == 9


def test_a_second_export_replaces_the_run(tmp_path):
    for _ in range(2):
        lernomatic('tensorboard', HISTORY, '--logdir', tmp_path / 'tb', '--no-serve', timeout=120)
    run_dir = tmp_path / 'tb' / 'mlp_history'
    assert len(list(run_dir.iterdir())) == 1 and len(_scalars(run_dir, 'loss/train')) == 30  # not 60


def test_a_run_folder_holding_other_files_is_left_alone(tmp_path):
    run_dir = tmp_path / 'tb' / 'mlp_history'
    run_dir.mkdir(parents=True)
    (run_dir / 'notes.txt').write_text('mine')
    run = lernomatic('tensorboard', HISTORY, '--logdir', tmp_path / 'tb', '--no-serve', check=False, timeout=120)
    assert_user_error(run, run_dir, 'notes.txt')
    assert [p.name for p in run_dir.iterdir()] == ['notes.txt']


def test_no_serve_without_logdir_keeps_the_temporary_directory(tmp_path):
    run = lernomatic('tensorboard', HISTORY, '--no-serve', timeout=120)
    logdir = Path(re.search(r'under (\S+) \(a temporary directory\)', run.stdout).group(1))
    try:
        assert len(_scalars(logdir / 'mlp_history', 'acc/val')) == 3
    finally:
        shutil.rmtree(logdir)


def test_logdir_is_created_but_not_its_parents(tmp_path):
    logdir = tmp_path / 'missing' / 'tb'
    run = lernomatic('tensorboard', HISTORY, '--logdir', logdir, '--no-serve', check=False, timeout=120)
    assert_user_error(run, logdir, f'directory {tmp_path / "missing"} does not exist')
    assert list(tmp_path.iterdir()) == []


# ---- a checkpoint directory: its history files and the Trainer's own event files become runs
def test_a_checkpoint_directory_becomes_runs(user_run, tmp_path):
    checkpoint = user_run['checkpoint']
    run = lernomatic('tensorboard', checkpoint, '--logdir', tmp_path / 'tb', '--no-serve', timeout=120)
    assert f'{checkpoint / "tiny_history.pkl"} -> run tiny_history' in run.stdout
    assert f'{checkpoint / "tiny" / "version_0"} (TensorBoard events) -> run tiny_version_0' in run.stdout
    assert sorted(p.name for p in (tmp_path / 'tb').iterdir()) == ['tiny_history', 'tiny_version_0']
    assert len(_scalars(tmp_path / 'tb' / 'tiny_history', 'acc/val')) == 2  # two epochs
    trainer_events = EventAccumulator(str(checkpoint / 'tiny' / 'version_0'))
    trainer_events.Reload()
    tags = trainer_events.Tags()['scalars']
    assert tags and all(_scalars(tmp_path / 'tb' / 'tiny_version_0', tag) ==
                        [event.value for event in trainer_events.Scalars(tag)] for tag in tags)
    again = lernomatic('tensorboard', checkpoint, '--logdir', tmp_path / 'tb', '--no-serve', timeout=120)
    assert again.returncode == 0 and len(list((tmp_path / 'tb' / 'tiny_version_0').iterdir())) == 1


def test_a_directory_without_runs_is_a_one_line_error(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    assert_user_error(lernomatic('tensorboard', tmp_path, '--no-serve', check=False), tmp_path,
                      'holds no *_history.pkl file and no TensorBoard event file')


def test_logdir_inside_the_directory_read_is_refused(tmp_path):
    shutil.copy(HISTORY, tmp_path / 'mlp_history.pkl')
    assert_user_error(lernomatic('tensorboard', tmp_path, '--logdir', tmp_path / 'tb', '--no-serve', check=False),
                      f'--logdir {tmp_path / "tb"}: lies inside {tmp_path}')
    assert not (tmp_path / 'tb').exists()


# ---- planted links: nothing outside the logdir changes
def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(path): (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(folder.rglob('*'))}


@pytest.mark.parametrize('planted', ['run folder', 'event file'])
def test_a_planted_link_is_not_written_through(tmp_path, planted):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'events.out.tfevents.1.victim').write_bytes(b'precious events')
    (outside / 'notes.txt').write_text('mine')
    before = _snapshot(outside)
    logdir = tmp_path / 'tb'
    if planted == 'run folder':
        logdir.mkdir()
        (logdir / 'mlp_history').symlink_to(outside, target_is_directory=True)
        link = logdir / 'mlp_history'
    else:
        (logdir / 'mlp_history').mkdir(parents=True)
        link = logdir / 'mlp_history' / 'events.out.tfevents.2.planted'
        link.symlink_to(outside / 'events.out.tfevents.1.victim')
    run = lernomatic('tensorboard', HISTORY, '--logdir', logdir, '--no-serve', check=False, timeout=120)
    assert_user_error(run, link.name, 'symbolic link' if planted == 'run folder' else 'not a TensorBoard event file')
    assert _snapshot(outside) == before
    assert link.is_symlink()  # not removed either: the user decides

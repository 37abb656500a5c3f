"""Hostile and absurd files, each written for real with torch.save, given to the `lernomatic` command.

Every run has a subprocess timeout: a hang check, not a speed target. A file that cannot be used
ends in exit status 2 and one line on stderr; one that can be shown is shown within bounds.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from test_cli import assert_user_error, cli_env, lernomatic

HANG = 120  # seconds: far beyond what any of these takes, short of forever


def _history(**changes):
    """A consistent history dict (3 epochs of 10 iterations), with `changes` applied."""
    record = {'loss_iter': 30, 'val_loss_iter': 9, 'acc_iter': 3, 'cur_epoch': 3, 'iter_per_epoch': 10,
              'loss_history': np.linspace(2.0, 1.0, 30), 'val_loss_history': np.linspace(2.0, 1.2, 9),
              'acc_history': np.array([0.3, 0.5, 0.6])}
    record.update(changes)
    return record


_PLACEHOLDER = 'deeply-nested-list-goes-here'


def _save_with_deep_list(record, key, depth, path):
    """`torch.save(record)` with `record[key]` a list nested `depth` deep, written without recursion.

    Pickling a deep list recurses once per level, past what Python 3.12's C pickler allows whatever
    the recursion limit; so a placeholder string is saved and its opcodes in data.pkl replaced by
    MARK x depth, EMPTY_LIST, LIST x depth (each LIST wraps what lies above its mark).
    """
    torch.save({**record, key: _PLACEHOLDER}, path)
    text = _PLACEHOLDER.encode()
    pickled = b'X' + len(text).to_bytes(4, 'little') + text  # BINUNICODE
    deep = b'(' * depth + b']' + b'l' * depth
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        for name, data in members:
            if name.endswith('/data.pkl'):
                assert data.count(pickled) == 1, 'the placeholder is pickled once'
                data = data.replace(pickled, deep)
            archive.writestr(name, data)


def _shared_bomb(width=20, depth=30):
    """The same list `width` times, `depth` levels deep: 20**30 paths in a file of a few kilobytes."""
    level = [1.0]
    for _ in range(depth):
        level = [level] * width
    return level


@pytest.fixture(scope='module')
def deep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('deep') / 'deep.pkl'
    _save_with_deep_list({'deep': None, 'loss_iter': 1}, 'deep', 100_000, path)
    return path


# ---- inspect: bounded walk
def test_inspect_survives_a_list_nested_100k_deep(deep_file):
    """Refused before reading (safe loading bounds the nesting); trusted, the walk itself stays bounded."""
    assert_user_error(lernomatic('inspect', deep_file, check=False, timeout=HANG), deep_file,
                      'nested deeper than 64 levels')
    for level in ('3', '100'):
        run = lernomatic('inspect', deep_file, '--trusted', '--show-data', '--max-level', level, timeout=HANG)
        lines = run.stdout.splitlines()
        assert lines[1] == "    'deep': list (1 items)"
        assert len(lines) == 2 + int(level) and run.stderr == ''  # the top, then levels 1..N, then 'loss_iter'


def test_inspect_expands_a_shared_list_once(tmp_path):
    shared = tmp_path / 'shared.pkl'
    torch.save({'bomb': _shared_bomb(depth=4)}, shared)  # 20**4 paths: within the pre-scan's budget
    run = lernomatic('inspect', shared, '--show-data', '--max-level', '100', '--max-lines', '100000', timeout=HANG)
    lines = run.stdout.splitlines()
    # one line per entry of each of the 4 distinct lists of 20 (each expanded once), the top and 'bomb'
    assert len(lines) == 2 + 4 * 20 and run.stderr == ''
    assert lines[-1] == '        [19]: list (20 items), the same object as line 3'
    assert ' ' * 4 * 5 + '[0]: list (1 items) = [1.0]' in lines  # the innermost list, at depth 5
    assert sum('the same object as line 5' in line for line in lines) == 19


def test_inspect_refuses_a_shared_reference_bomb(tmp_path):
    bomb = tmp_path / 'bomb.pkl'
    torch.save({'bomb': _shared_bomb()}, bomb)  # 20**30 paths in a few kilobytes
    assert_user_error(lernomatic('inspect', bomb, '--max-level', '100', check=False, timeout=HANG),
                      'more than 10,000,000 parts')


def test_inspect_stops_at_max_lines_and_says_so(tmp_path):
    shared = tmp_path / 'shared.pkl'
    torch.save({'bomb': _shared_bomb(depth=4)}, shared)
    run = lernomatic('inspect', shared, '--max-level', '100', '--max-lines', '40', timeout=HANG)
    assert len(run.stdout.splitlines()) == 40
    assert run.stderr.strip().splitlines() == ['lernomatic inspect: output stopped after 40 lines '
                                               '(raise --max-lines to see more)']


def test_inspect_of_a_list_that_holds_itself(tmp_path):
    loop = []
    loop.append(loop)
    torch.save({'loop': loop}, tmp_path / 'loop.pkl')
    lines = lernomatic('inspect', tmp_path / 'loop.pkl', '--max-level', '100', timeout=HANG).stdout.splitlines()
    assert lines[2:] == ['        [0]: list (1 items), the same object as line 2']


def test_inspect_bounds_huge_values(tmp_path):
    huge = tmp_path / 'huge.pkl'
    expanded = torch.arange(3.0)[:1].expand(10**12)  # 10**12 elements over one stored value
    torch.save({'text': 'x' * 10**7, 'number': 10**600, 'wide': list(range(10**6)),
                'many': dict.fromkeys(range(10**5)), 'expanded': expanded,
                'tiny': np.float32(0.5)}, huge)  # no tuple key: the pre-scan refuses those (test_torch_layout)
    run = lernomatic('inspect', huge, '--show-data', timeout=HANG)
    lines = run.stdout.splitlines()
    assert max(map(len, lines)) < 300 and len(lines) < 70 and run.stderr == ''
    assert "    'number': int = <1994-bit integer>" in lines
    assert "'text': str = 'xxxxxxxxxx" in run.stdout and '... (10000000 characters)' in run.stdout
    assert "    'wide': list (1000000 items) = [0, 1, 2, 3, 4, 5, 6, 7, ...]" in lines
    assert "'expanded': Tensor float32 (1000000000000,) on cpu = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]" in run.stdout
    assert '        ... 99950 more' in lines and "'tiny': float32 = np.float32(0.5)" in run.stdout


def test_inspect_piped_into_a_reader_that_leaves(tmp_path):
    """`lernomatic inspect FILE | head -1`: the closed pipe ends the command quietly, with status 0."""
    tree = tmp_path / 'tree.pkl'
    torch.save({i: {j: [{'k': k} for k in range(50)] for j in range(50)} for i in range(50)}, tree)  # 250,000 lines
    reader = subprocess.Popen([sys.executable, '-m', 'lernomatic', 'inspect', str(tree), '--max-level', '100',
                               '--max-lines', '1000000'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    try:
        assert reader.stdout.readline().startswith(str(tree).encode())
        reader.stdout.close()
        assert reader.wait(timeout=HANG) == 0
        assert reader.stderr.read() == b''
    finally:
        if reader.poll() is None:
            reader.kill()
        reader.stderr.close()


# ---- plot and tensorboard: checked before anything is allocated or drawn
ABSURD = {
    'cur_epoch beyond the iterations': (_history(cur_epoch=10**12), 'cur_epoch is 1000000000000'),
    'counter beyond its array': (_history(loss_iter=10**6), 'loss_history has 30 entries but loss_iter is 1000000'),
    'negative counter': (_history(acc_iter=-1), 'acc_iter is -1'),
    'counter of 600 digits': (_history(val_loss_iter=10**600),
                              'val_loss_history has 9 entries but val_loss_iter is <1994-bit integer>'),
    'counter that is a string': (_history(loss_iter='30'), "loss_iter is '30'"),
    'counter that is a float': (_history(cur_epoch=3.0), 'cur_epoch is 3.0'),
    'array of two dimensions': (_history(loss_history=np.zeros((30, 2))), 'loss_history has shape (30, 2)'),
    'array of strings': (_history(acc_history=np.array(['a', 'b', 'c'])), 'acc_history holds <U1'),
    'array of complex numbers': (_history(acc_history=np.ones(3, complex)), 'acc_history holds complex128'),
    'dict instead of an array': (_history(loss_history={'a': 1}), 'loss_history is a dict'),
    'nested lists instead of an array': (_history(val_loss_history=[[0.1]] * 9), 'val_loss_history is a list'),
    'shared-reference bomb instead of an array': (_history(loss_history=_shared_bomb()), 'more than 10,000,000 parts'),
    'array missing, counter set': (_history(acc_history=None), 'acc_history is None but acc_iter is 3'),
    'tensor claiming 10**12 entries': (_history(loss_history=torch.zeros(1).expand(10**12), loss_iter=10**12),
                                       'at most 10000000'),
    'not a dict at all': ([1, 2, 3], 'not a Lernomatic history file'),
    'a key missing': ({'loss_iter': 3}, 'missing key(s) val_loss_iter'),
}


@pytest.mark.parametrize('case', ABSURD, ids=list(ABSURD))
def test_plot_refuses_absurd_histories(tmp_path, case):
    content, reason = ABSURD[case]
    history = tmp_path / 'absurd.pkl'
    torch.save(content, history)
    assert_user_error(lernomatic('plot', history, '-o', tmp_path / 'x.png', check=False, timeout=HANG),
                      history, reason)
    assert not (tmp_path / 'x.png').exists()


@pytest.mark.parametrize('case', ['cur_epoch beyond the iterations', 'counter beyond its array', 'array of strings',
                                  'shared-reference bomb instead of an array', 'tensor claiming 10**12 entries'])
def test_tensorboard_refuses_absurd_histories(tmp_path, case):
    content, reason = ABSURD[case]
    history = tmp_path / 'absurd.pkl'
    torch.save(content, history)
    run = lernomatic('tensorboard', history, '--logdir', tmp_path / 'tb', check=False, timeout=HANG)
    assert_user_error(run, history, reason)
    assert not (tmp_path / 'tb').exists()  # every file is checked before anything is written


def test_a_counter_torch_refuses_to_unpickle_and_the_same_file_trusted(tmp_path):
    """Integers over 255 bytes are beyond weights-only loading; with --trusted the value check still holds."""
    history = tmp_path / 'thousand_digits.pkl'
    torch.save(_history(loss_iter=10**1000), history)
    run = lernomatic('plot', history, '-o', tmp_path / 'x.png', check=False, timeout=HANG)
    assert_user_error(run, history, 'weights-only loading refused it: Unsupported operand 139 (pickle opcode LONG4)')
    run = lernomatic('plot', history, '-o', tmp_path / 'x.png', '--trusted', check=False, timeout=HANG)
    assert_user_error(run, history, 'loss_history has 30 entries but loss_iter is <3322-bit integer>')


def test_deeply_nested_history_value_is_refused(tmp_path, deep_file):
    history = tmp_path / 'deep_history.pkl'
    _save_with_deep_list(_history(), 'acc_history', 100_000, history)
    for args in (('plot', history, '-o', tmp_path / 'x.png'), ('tensorboard', history, '--no-serve')):
        assert_user_error(lernomatic(*args, check=False, timeout=HANG), history, 'nested deeper than 64 levels')
        trusted = lernomatic(*args, '--trusted', check=False, timeout=HANG)  # read, then its value refused
        assert_user_error(trusted, history, 'acc_history is a list')


@pytest.mark.parametrize('values', [np.full(30, np.inf), np.full(30, np.nan), np.full(30, 1e308)],
                         ids=['inf', 'nan', 'near the float range'])
def test_plot_draws_non_finite_and_extreme_losses(tmp_path, values):
    history = tmp_path / 'odd.pkl'
    torch.save(_history(loss_history=values), history)
    run = lernomatic('plot', history, '-o', tmp_path / 'odd.png', timeout=HANG)
    assert run.stderr == '' and (tmp_path / 'odd.png').read_bytes()[:4] == b'\x89PNG'


def test_convert_refuses_malformed_checkpoints(tmp_path):
    cases = {
        'model_is_a_number.pkl': ({'model': 5, 'optim': {}, 'trainer_params': {}}, 'expected a model metadata dict'),
        'weights_are_strings.pkl': ({'model': {'model_state_dict': {'w': 'x'}, 'model_name': 'M',
                                               'model_import_path': 'm', 'module_name': 'N',
                                               'module_import_path': 'm'}, 'optim': {}, 'trainer_params': {}},
                                    "entry 'w' is a str: a state dict maps names to tensors"),
        'bad_lightning.ckpt': ({'state_dict': [1], 'pytorch-lightning_version': '2.0'},
                               "['state_dict']: expected parameter names and tensors"),
    }
    for name, (content, reason) in cases.items():
        torch.save(content, tmp_path / name)
        run = lernomatic('convert', tmp_path / name, tmp_path / 'out.ckpt', check=False, timeout=HANG)
        assert_user_error(run, tmp_path / name, reason)
    assert not (tmp_path / 'out.ckpt').exists()


def test_plot_does_not_write_through_a_link_planted_beside_the_history(tmp_path):
    """A downloaded run folder with run.png -> ~/.bashrc: the default output is refused, the target untouched."""
    victim = tmp_path / 'bashrc'
    victim.write_text('precious')
    run_folder = tmp_path / 'downloaded'
    run_folder.mkdir()
    torch.save(_history(), run_folder / 'run.pkl')
    (run_folder / 'run.png').symlink_to(victim)
    run = lernomatic('plot', run_folder / 'run.pkl', check=False, timeout=HANG)
    assert_user_error(run, run_folder / 'run.png', 'is a symbolic link beside the history file')
    assert victim.read_text() == 'precious'
    lernomatic('plot', run_folder / 'run.pkl', '-o', tmp_path / 'chosen.png', timeout=HANG)
    assert (tmp_path / 'chosen.png').read_bytes()[:4] == b'\x89PNG' and victim.read_text() == 'precious'

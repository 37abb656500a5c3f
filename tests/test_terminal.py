"""What a person sees: the main job and small runs in a real pseudo-terminal, read off the rendered screen.

Each run is a subprocess on a pty of fixed size (Python's own `pty`, nothing to install); its
output is replayed on a small terminal model (carriage return, line feed, cursor up/down, erase in
line, autowrap) to get the screen a terminal shows. Runs without a terminal use plain pipes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
import unicodedata
import warnings
from pathlib import Path

import pytest

from compat.loop.lightning_trainer import quiet_lightning

REPO = Path(__file__).resolve().parents[1]
COLUMNS, ROWS = 100, 50
OUR_MESSAGE = re.compile(r'\[TRAIN\]|\[VAL\]|\[TEST\]|Saving (history|checkpoint)|Finished epoch|\w+ data kept on')
BAR_MARKS = ('%|', 'it/s', '█')
LIGHTNING_LINES = ('GPU available', 'TPU available', 'Tip:', 'Trainable params', '| Name', 'LeafSpec',
                   'Trainer.fit` stopped')


def run_in_pty(argv: list[str], cwd: Path, timeout: float = 300.0) -> tuple[int, str]:
    """Run `argv` with stdin, stdout and stderr on a COLUMNS x ROWS pseudo-terminal; its exit code and output."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', ROWS, COLUMNS, 0, 0))
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')]))  # the repo first, then the env's
    env = {**os.environ, 'TERM': 'xterm', 'PYTHONPATH': path, 'COLUMNS': str(COLUMNS), 'LINES': str(ROWS)}
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True,
                               start_new_session=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as error:  # EIO: the child side is closed
                if error.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            process.kill()
            raise AssertionError(f'{argv} ran past {timeout}s')
    finally:
        os.close(master)
    return process.wait(timeout=60), b''.join(chunks).decode('utf-8', errors='replace')


def render(output: str, columns: int = COLUMNS, rows: int = ROWS) -> list[str]:
    """Every line a terminal of `columns` x `rows` holds after `output`, scrolled-off lines first.

    Models what tqdm and a log writer use: printable characters (wide ones in two cells) with autowrap, CR, LF, BS,
    CSI n A/B/C/D (cursor moves, up clamped to the top of the screen), CSI K (erase in line);
    other escape sequences are dropped.
    """
    lines: list[list[str]] = [[]]
    row = col = 0
    pending_wrap = False

    def put(char: str) -> None:
        nonlocal row, col, pending_wrap
        width = 2 if unicodedata.east_asian_width(char) in ('W', 'F') else 1  # an emoji takes two cells
        if pending_wrap or col + width > columns:
            row, col, pending_wrap = row + 1, 0, False
            while len(lines) <= row:
                lines.append([])
        line = lines[row]
        line.extend(' ' * (col + width - len(line)))
        line[col:col + width] = [char] + [''] * (width - 1)
        if col + width >= columns:
            pending_wrap = True
        else:
            col += width

    index = 0
    while index < len(output):
        char = output[index]
        index += 1
        if char == '\x1b':
            match = re.compile(r'\[([?0-9;]*)([@-~])|[()][0-9A-Za-z]|[=>78DEHM]').match(output, index)
            if match is None:
                continue
            index = match.end()
            if match.group(2) is None:
                continue
            params, command = match.group(1), match.group(2)
            count = int(params) if params.isdigit() else 1
            if command == 'A':
                row = max(row - count, max(0, len(lines) - rows))
            elif command == 'B':
                row += count
                while len(lines) <= row:
                    lines.append([])
            elif command == 'C':
                col = min(col + count, columns - 1)
            elif command == 'D':
                col = max(col - count, 0)
            elif command == 'K':
                line = lines[row]
                if params in ('', '0'):
                    del line[col:]
                elif params == '1':
                    line[:col + 1] = ' ' * min(col + 1, len(line))
                else:
                    line.clear()
            pending_wrap = False
        elif char == '\r':
            col, pending_wrap = 0, False
        elif char == '\n':
            row, pending_wrap = row + 1, False
            while len(lines) <= row:
                lines.append([])
        elif char == '\b':
            col, pending_wrap = max(col - 1, 0), False
        elif char >= ' ' and char != '\x7f':
            put(char)
    text = [''.join(line).rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    return text


def screen(output: str) -> list[str]:
    """The visible screen after `output`, as `tmux capture-pane -p` gives it (blank lines at the end dropped)."""
    return render(output)[-ROWS:]


def test_the_renderer_models_what_tqdm_writes():
    # a bar drawn, lifted by a message (tqdm.write: CR, blank, CR), redrawn, a second bar below and up again
    blank = '\r' + ' ' * 12 + '\r'
    output = ('\rbar 10%|#  |' + blank + 'message one\r\n\rbar 20%|## |\r\n\rsub 50%\x1b[A'
              '\r\n' + blank + '\x1b[A' + blank + 'last line\r\n')
    assert render(output) == ['message one', 'last line']
    assert render('x' * 12 + '\r\n', columns=10) == ['x' * 10, 'xx']
    assert render('abc\x1b[2K\rd\n') == ['d']


# ---- the main job, as a new user runs it, on a terminal
@pytest.fixture(scope='module')
def main_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    out = tmp_path_factory.mktemp('digits')
    code, output = run_in_pty([sys.executable, str(REPO / 'examples' / 'train_digits.py'), '--epochs', '2',
                               '--out', str(out)], cwd=out)
    return code, output, out


def test_main_job_screen_is_our_lines_only_and_ends_with_val_acc(main_job):
    code, output, _ = main_job
    lines = screen(output)
    assert code == 0, '\n'.join(lines)
    assert re.fullmatch(r'val_acc=\d\.\d{4}', lines[-1]), '\n'.join(lines)
    everything = '\n'.join(render(output))
    for text in LIGHTNING_LINES + ('Warning', 'warn(', 'Epoch '):
        assert text not in everything, f'{text!r} on the terminal:\n{everything}'


def test_main_job_messages_are_never_glued_to_a_bar_and_no_bar_is_left(main_job):
    _, output, _ = main_job
    rendered = render(output)
    messages = [line for line in rendered if OUR_MESSAGE.search(line)]
    assert len(messages) >= 2 * 7, '\n'.join(rendered)  # per epoch: 2 [TRAIN], [VAL], 2 checkpoints, end, history
    for line in messages:
        assert OUR_MESSAGE.match(line), f'a message not at the start of its line: {line!r}'
        assert not any(mark in line for mark in BAR_MARKS), f'a message glued to a bar: {line!r}'
    for line in rendered:
        assert not any(mark in line for mark in BAR_MARKS), f'a bar left on the terminal: {line!r}'


def test_main_job_bar_and_log_count_epochs_from_1_and_file_names_from_0(main_job):
    """The bar and the lines say 'epoch 1/2' .. 'epoch 2/2', as the original printed and as the plot and
    TensorBoard count; only file names keep the original's 0-based `cur_epoch`."""
    _, output, out = main_job
    # in the order written: bar frames 'epoch 1/2:  45%|' and our lines; each line's epoch is the bar's
    events = re.finditer(r'(?P<bar>epoch (?P<bar_epoch>\d+)/2: +\d+%\|)'
                         r'|\[(?:TRAIN|VAL)\] +epoch (?P<log_epoch>\d+)/2 '
                         r'|Saving checkpoint to \S+_epoch_(?P<file_epoch>\d+)_iter_\d+',
                         output)
    bar_epoch, seen = None, []
    for event in events:
        if event.group('bar'):
            bar_epoch = event.group('bar_epoch')
            continue
        if event.group('file_epoch'):
            assert int(event.group('file_epoch')) == int(bar_epoch) - 1, event.group(0)
            continue
        said = event.group('log_epoch')
        assert said == bar_epoch, f'a line says epoch {said} while the bar says {bar_epoch}: {event.group(0)!r}'
        seen.append(said)
    assert sorted(set(seen)) == ['1', '2'], seen
    assert 'Saving checkpoint (epoch' not in output
    names = sorted(p.name for p in (out / 'checkpoint').glob('digits_epoch_*_iter_*.pkl'))
    assert names == ['digits_epoch_0_iter_21.pkl', 'digits_epoch_1_iter_42.pkl']


def test_main_job_without_a_terminal_prints_plain_lines(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / 'examples' / 'train_digits.py'), '--epochs', '1',
                          '--out', str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for stream in (run.stdout, run.stderr):
        assert '\r' not in stream and '\x1b' not in stream and not any(mark in stream for mark in BAR_MARKS)
    assert all(OUR_MESSAGE.match(line) for line in run.stderr.splitlines()), run.stderr
    assert '[VAL]   epoch 1/1  mean loss' in run.stderr
    assert re.fullmatch(r'val_acc=\d\.\d{4}', run.stdout.splitlines()[-1]), run.stdout


# ---- verbosity
SMALL_RUN = textwrap.dedent('''
    import sys
    import warnings
    import lightning
    sys.path.insert(0, {data!r})
    import fixture_data, fixture_nets
    from lernomatic.train.trainer import Trainer

    class WarnsOnce(lightning.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.current_epoch == 0 and batch_idx == 1:
                warnings.warn('a warning of the user, mid-epoch', UserWarning)

    Trainer(fixture_nets.MLPModel(), train_dataset=fixture_data.make(64, 1), val_dataset=fixture_data.make(32, 2),
            num_epochs=2, batch_size=16, print_every=2, num_workers=0, checkpoint_dir='checkpoint',
            verbose={verbose}, callbacks={callbacks}).train()
''')


def small_run(tmp_path: Path, verbose: object, callbacks: str = 'None') -> tuple[int, str]:
    script = tmp_path / 'small_run.py'
    script.write_text(SMALL_RUN.format(data=str(REPO / 'tests' / 'data' / 'original'), verbose=verbose,
                                       callbacks=callbacks))
    return run_in_pty([sys.executable, str(script)], cwd=tmp_path)


def test_verbose_false_prints_nothing_at_all_even_on_a_terminal(tmp_path):
    code, output = small_run(tmp_path, False)
    assert code == 0 and output == ''
    assert (tmp_path / 'checkpoint' / 'ck_history.pkl').is_file()  # it did train


def test_verbose_2_shows_lightnings_own_lines_and_warnings_above_the_bar(tmp_path):
    code, output = small_run(tmp_path, 2, callbacks='[WarnsOnce()]')
    rendered = render(output)
    everything = '\n'.join(rendered)
    assert code == 0, everything
    # (Lightning's tips and the LeafSpec deprecation come and go with versions: the filter's own test is below)
    for text in ('GPU available', 'Trainable params', '[VAL]   epoch 2/2'):
        assert text in everything, f'{text!r} missing:\n{everything}'
    # written while the bar is drawn, each on a line of its own, and no bar left at the end
    warning = [line for line in rendered if 'small_run.py:' in line]
    assert len(warning) == 1 and warning[0].startswith(str(tmp_path)), everything
    assert 'a warning of the user, mid-epoch' in everything.replace('\n', ''), everything
    assert '`Trainer.fit` stopped: `max_epochs=2` reached.' in rendered, everything
    for line in rendered:
        assert not any(mark in line for mark in BAR_MARKS), f'a bar left on the terminal: {line!r}'


@pytest.mark.parametrize('verbose', [1.0, 3, -1, 'yes', None])
def test_verbose_is_checked(make_trainer, verbose):
    from compat.errors import ConfigError
    with pytest.raises(ConfigError, match=r"verbose must be False/0 .* or 2 .*got"):
        make_trainer(verbose=verbose)


def test_a_bar_among_the_users_callbacks_is_used_without_a_terminal_too(make_trainer):
    from lightning.pytorch.callbacks import TQDMProgressBar
    trainer = make_trainer(num_epochs=1, verbose=True, callbacks=[TQDMProgressBar(refresh_rate=5)])
    trainer.train()  # Lightning refuses a bar callback when the bar is off: ours stays off here, theirs is on
    assert trainer.acc_iter == 1


def test_known_deprecation_is_hidden_in_our_runs_only_and_nothing_else_is():
    leaf = '`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead.'
    other = 'some other FutureWarning'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with quiet_lightning(True):
            warnings.warn(leaf, FutureWarning, stacklevel=1)
            warnings.warn(other, FutureWarning, stacklevel=1)
        with quiet_lightning(2):
            warnings.warn(leaf, FutureWarning, stacklevel=1)
        warnings.warn(leaf, FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [other, leaf, leaf]

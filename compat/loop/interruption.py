"""Ctrl-C during a run: `train()` raises `KeyboardInterrupt`, as the original's did, after a clean stop.

Lightning turns a `KeyboardInterrupt` into `SystemExit(1)` after its clean-up, and ignores SIGINT
meanwhile (so a clean-up that hangs can only be killed). Old scripts catch `KeyboardInterrupt`
around `train()` to save a checkpoint, and go on after it. So, for the run:

- the first Ctrl-C is taken at the next step boundary (after a training batch's bookkeeping, or
  after a validation batch): the trainer's state is then that of a finished step, which a
  checkpoint saved in the script's `except KeyboardInterrupt` records exactly;
- a second Ctrl-C before that boundary raises at once (a hung DataLoader must not hold the run);
- during the clean-up that follows (Lightning's and ours), Ctrl-C ends the process at once;
- Lightning's `SystemExit` from a `KeyboardInterrupt` is raised again as that `KeyboardInterrupt`.

The handler is installed only where Python's own is (the main thread, no handler of the user's);
runs over several processes keep Python's behaviour: a rank stopping at its own boundary could
leave the others waiting in a collective.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from compat.logs import get_logger

__all__ = ['CtrlC', 'taking_ctrl_c', 'end_process_on_ctrl_c']

log = get_logger('train')


class CtrlC:
    """The SIGINT handler of one run: a request taken at the next step boundary.

    Attributes:
        deferrable: whether a boundary will come (set once the run is known to be one process).
        pressed: Ctrl-C presses seen.
        stopping: the run is stopping (a KeyboardInterrupt was raised): the next Ctrl-C ends the process.
    """

    def __init__(self) -> None:
        self.deferrable = False
        self.pressed = 0
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            _die_of_sigint()
        self.pressed += 1
        if not self.deferrable or self.pressed > 1:
            self.stopping = True
            raise KeyboardInterrupt

    def at_boundary(self, where: str) -> None:
        """Raise the requested KeyboardInterrupt here, a point where the trainer's state is a finished step's."""
        if self.pressed and not self.stopping:
            self.stopping = True
            log.warning('Ctrl-C: stopped %s', where)
            raise KeyboardInterrupt


def _die_of_sigint() -> None:
    """End the process now, as an unhandled Ctrl-C does (killed by SIGINT: the shell sees it so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.raise_signal(signal.SIGINT)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def end_process_on_ctrl_c() -> None:
    """From here on Ctrl-C ends the process at once (the clean-up of a stopping run: nothing can hang it)."""
    if _in_main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def ending_process_on_ctrl_c() -> Iterator[None]:
    """`end_process_on_ctrl_c` for a block; the handler before it is put back after."""
    if not _in_main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    end_process_on_ctrl_c()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _lightnings_keyboard_interrupt(error: SystemExit) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt behind Lightning's graceful-shutdown `sys.exit(1)`, or None for another exit."""
    context = error.__context__
    return context if error.code == 1 and isinstance(context, KeyboardInterrupt) else None


@contextlib.contextmanager
def taking_ctrl_c() -> Iterator[CtrlC]:
    """Inside: Ctrl-C as described above; a `KeyboardInterrupt` comes out as one (never as `SystemExit`)."""
    ctrl_c = CtrlC()
    before = signal.getsignal(signal.SIGINT) if _in_main_thread() else None
    ours = before is signal.default_int_handler
    if ours:
        signal.signal(signal.SIGINT, ctrl_c)
    try:
        yield ctrl_c
    except SystemExit as error:
        interrupt = _lightnings_keyboard_interrupt(error)
        if interrupt is None:
            raise
        raise interrupt from None
    finally:
        if before is not None:  # also undoes Lightning's SIG_IGN where its clean-up did not
            signal.signal(signal.SIGINT, before)

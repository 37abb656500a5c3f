"""Hand-written Lernomatic epoch loops, fed one batch per Lightning step.

A subclass's `train_epoch()` iterates `self.train_loader` itself. Here that method runs as a
coroutine (a greenlet: same thread, so grad mode, autocast and CUDA streams set by Lightning apply
to it). Lightning's loop fetches each batch and calls a step; the step hands the batch to the
user's loop and waits until the loop asks for the next one. Code after the loop runs when
Lightning's epoch has no more batches; a `break` ends the coroutine early.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from greenlet import greenlet

__all__ = ['EpochRunner', 'FedLoader', 'UntilReturned']

_NEED_BATCH = object()  # the user's loop asks for its next batch
_NO_MORE = object()  # Lightning's epoch has no more batches
_RETURNED = object()  # the user's epoch method returned


class EpochRunner:
    """One legacy epoch method (`train_epoch`, `val_epoch`, `test_epoch`) as a coroutine over fed batches."""

    def __init__(self, epoch_method: Callable[[], Any]) -> None:
        self._epoch_method = epoch_method
        self._coroutine: greenlet | None = None
        self._returned = False
        self.starts = 0  # epochs begun: tells this epoch's return from the last one's

    @property
    def active(self) -> bool:
        """Started this epoch and still waiting for batches."""
        return self._coroutine is not None and not self._returned

    @property
    def returned(self) -> bool:
        """The user's method has returned this epoch (at the end, or early after a `break`)."""
        return self._returned

    def start(self) -> None:
        """Run the code before the user's loop, up to its first request for a batch."""
        self._returned = False
        self.starts += 1
        self._coroutine = greenlet(self._run)
        self._resume()

    def feed(self, batch: Any) -> bool:
        """Give the user's loop one batch and run it until it wants the next; False if it had already returned."""
        if self._coroutine is None:
            self.start()
        if self._returned:
            return False
        self._resume(batch)
        return True

    def finish(self) -> None:
        """Tell the user's loop there are no more batches, and run the code after it."""
        if self._coroutine is None:
            self.start()
        while not self._returned:
            self._resume(_NO_MORE)
        self._coroutine = None

    def batches(self) -> Iterator[Any]:
        """The iterator a FedLoader hands to the user's `for` loop (runs inside the coroutine)."""
        assert self._coroutine is not None, 'a fed loader was iterated outside its epoch'
        parent = self._coroutine.parent
        while True:
            batch = parent.switch(_NEED_BATCH)
            if batch is _NO_MORE:
                return
            yield batch

    def _run(self) -> Any:
        self._epoch_method()
        return _RETURNED

    def _resume(self, value: Any = None) -> None:
        coroutine = self._coroutine
        assert coroutine is not None, 'start() creates the coroutine before anything resumes it'
        signal = coroutine.switch(value) if value is not None else coroutine.switch()
        if signal is _RETURNED or coroutine.dead:
            self._returned = True


class FedLoader:
    """Stands in for a DataLoader inside a legacy loop: iterating it yields the batches Lightning fetched.

    Everything else (`dataset`, `batch_size`, `sampler`, ...) is the real loader's; `len()` is the
    number of batches Lightning runs in this process (a per-rank share under DDP).
    """

    def __init__(self, loader: Any, runner: EpochRunner, length: Callable[[], int]) -> None:
        self._loader = loader
        self._runner = runner
        self._length = length

    def __iter__(self) -> Iterator[Any]:
        return self._runner.batches()

    def __len__(self) -> int:
        return self._length()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __repr__(self) -> str:
        return f'FedLoader({self._loader!r})'


class UntilReturned:
    """The evaluation loader Lightning fetches from for a hand-written `val_epoch`/`test_epoch`: it stops
    fetching once the user's method has returned.

    An old `val_epoch` may never read `self.val_loader` (or break out of it); Lightning would still
    fetch every batch of it. Here it fetches the first (which starts the method) and the one it had
    prefetched, then ends the stage. Used in one process only: under DDP Lightning must see the
    DataLoader itself to give each rank its share.
    """

    def __init__(self, loader: Any, runner: EpochRunner) -> None:
        self._loader = loader
        self._runner = runner

    def __iter__(self) -> Iterator[Any]:
        starts_before = self._runner.starts
        for batch in self._loader:
            yield batch
            if self._runner.starts > starts_before and self._runner.returned:
                return

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __repr__(self) -> str:
        return f'UntilReturned({self._loader!r})'

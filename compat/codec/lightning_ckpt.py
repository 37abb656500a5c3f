"""Lernomatic `.pkl` checkpoints <-> Lightning `.ckpt` files of the adapter (`compat.adapter.LernomaticModule`).

A `.ckpt` made here resumes with a plain `lightning.Trainer(...).fit(LernomaticModule(model), ckpt_path=...)`:
the weights go under the adapter's `net.` prefix, the optimizer state into `optimizer_states`, and
Lernomatic's `cur_epoch` into Lightning's loop progress. The Lernomatic metadata and trainer params
ride along under `lernomatic_model` / `lernomatic_trainer_params`, so a round trip loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from typing import Any

from compat.codec.schema import CHECKPOINT_KEYS
from compat.errors import CheckpointError

__all__ = ['is_lightning_checkpoint', 'lernomatic_from_lightning', 'lightning_from_lernomatic', 'NET_PREFIX']

NET_PREFIX = 'net.'


def is_lightning_checkpoint(data: Any) -> bool:
    return isinstance(data, Mapping) and 'state_dict' in data and 'pytorch-lightning_version' in data


@contextlib.contextmanager
def _lightning_quiet() -> Iterator[None]:
    """Lightning's banner off while a Trainer is built only as a source of loop state.

    Building one logs the hardware it found and a tip, and on a GPU machine warns "GPU available but
    not used": in a file conversion all of that misleads.
    """
    loggers = [logging.getLogger(name) for name in ('lightning.pytorch', 'lightning.fabric')]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='.*available but not used')
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _fit_loop_state(cur_epoch: int, steps: int) -> dict[str, Any]:
    """Lightning's fit-loop state for a run that finished `cur_epoch` epochs (needs Lightning: imported here)."""
    import lightning

    with _lightning_quiet():  # after the import, which sets Lightning's levels
        trainer = lightning.Trainer(max_epochs=max(cur_epoch, 1), logger=False, enable_checkpointing=False,
                                    enable_progress_bar=False, enable_model_summary=False, accelerator='cpu')
    loop = trainer.fit_loop
    for progress in (loop.epoch_progress.current, loop.epoch_progress.total):
        progress.ready = progress.started = progress.processed = progress.completed = cur_epoch
    step_progress = loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step
    step_progress.total.ready = step_progress.total.completed = steps
    loop.epoch_loop._batches_that_stepped = steps
    return {'fit_loop': loop.state_dict(), 'validate_loop': trainer.validate_loop.state_dict(),
            'test_loop': trainer.test_loop.state_dict(), 'predict_loop': trainer.predict_loop.state_dict()}


def lightning_from_lernomatic(data: Mapping[str, Any], fname: Any = 'checkpoint') -> dict[str, Any]:
    """A Lightning `.ckpt` dict for the adapter, from a Lernomatic trainer checkpoint dict."""
    missing = [key for key in CHECKPOINT_KEYS if key not in data]
    if missing:
        raise CheckpointError(f'{fname}: not a Lernomatic trainer checkpoint (missing {", ".join(missing)})')
    model = dict(data['model'])
    params = dict(data['trainer_params'])
    state = OrderedDict((NET_PREFIX + key, value) for key, value in model.pop('model_state_dict').items())
    cur_epoch = int(params.get('cur_epoch', 0))
    optim_state = data['optim']
    steps = _optimizer_steps(optim_state)
    return {
        'epoch': max(cur_epoch - 1, 0), 'global_step': steps, 'pytorch-lightning_version': version('lightning'),
        'state_dict': state, 'loops': _fit_loop_state(cur_epoch, steps), 'callbacks': {},
        'optimizer_states': [optim_state], 'lr_schedulers': [],
        'lernomatic_model': model, 'lernomatic_trainer_params': params,
        **{key: value for key, value in data.items() if key not in CHECKPOINT_KEYS},
    }


def _optimizer_steps(optim_state: Mapping[str, Any]) -> int:
    for state in optim_state.get('state', {}).values():
        step = state.get('step') if isinstance(state, Mapping) else None
        if step is not None:
            return int(step)
    return 0


def lernomatic_from_lightning(data: Mapping[str, Any], defaults: Mapping[str, Any], fname: Any = 'checkpoint',
                              ) -> dict[str, Any]:
    """A Lernomatic trainer checkpoint dict from a Lightning `.ckpt` of the adapter.

    `defaults` fills trainer params the `.ckpt` does not carry (a run started in plain Lightning).
    """
    if not is_lightning_checkpoint(data):
        raise CheckpointError(f'{fname}: not a Lightning checkpoint (no state_dict / pytorch-lightning_version)')
    meta = data.get('lernomatic_model')
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"{fname}: has no 'lernomatic_model' metadata: it was not written by "
                              'compat.adapter.LernomaticModule, so the model to rebuild is unknown')
    weights = OrderedDict((key[len(NET_PREFIX):], value) for key, value in data['state_dict'].items()
                          if key.startswith(NET_PREFIX))
    if not weights:
        raise CheckpointError(f"{fname}: its state_dict has no '{NET_PREFIX}*' tensors")
    optimizers = data.get('optimizer_states') or []
    if len(optimizers) != 1:
        raise CheckpointError(f'{fname}: expected one optimizer state, found {len(optimizers)}')
    params = dict(defaults)
    params.update(data.get('lernomatic_trainer_params') or {})
    if 'lernomatic_trainer_params' not in data or 'cur_epoch' not in data['lernomatic_trainer_params']:
        params['cur_epoch'] = _finished_epochs(data)
    model = {'model_state_dict': weights, **dict(meta)}
    model = {key: model[key] for key in ('model_state_dict', 'model_name', 'model_import_path', 'module_name',
                                         'module_import_path', 'model_args') if key in model}
    extra = {key: value for key, value in data.items()
             if key not in ('epoch', 'global_step', 'pytorch-lightning_version', 'state_dict', 'loops', 'callbacks',
                            'optimizer_states', 'lr_schedulers', 'lernomatic_model', 'lernomatic_trainer_params',
                            'hparams_name', 'hyper_parameters')}
    return {'model': model, 'optim': optimizers[0], 'trainer_params': params, **extra}


def _finished_epochs(data: Mapping[str, Any]) -> int:
    try:
        return int(data['loops']['fit_loop']['epoch_progress']['current']['completed'])
    except (KeyError, TypeError):
        return int(data.get('epoch', 0)) + 1

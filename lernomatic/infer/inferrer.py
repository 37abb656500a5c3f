"""`Inferrer`: a forward-pass wrapper that loads its model from a Lernomatic or Lightning checkpoint.

Zoo inferrers subclass it as they did with the original: they pop their own keyword options,
pass the rest to `Inferrer.__init__`, set extra models as attributes (before or after calling
it), and override `_init_device`, `_send_to_device`, `forward` and `load_model`.
"""

from __future__ import annotations

from typing import Any

import torch

from compat.codec.checkpoint import read_model_params
from compat.codec.lightning_ckpt import lernomatic_from_lightning
from compat.codec.model_import import build_wrapper
from compat.codec.safe_load import safe_load
from compat.codec.schema import is_lightning_checkpoint
from compat.codec.trust import loading
from compat.devices import torch_device
from compat.errors import CheckpointError, ConfigError
from compat.kwargs import report_unknown_kwargs
from compat.text import short_repr
from lernomatic.models.common import LernomaticModel

__all__ = ['Inferrer', 'INFERRER_OPTIONS']

# The keyword options the base class knows, with their defaults (anything else is reported once
# and ignored, as the original ignored it).
INFERRER_OPTIONS: dict[str, Any] = {'device_id': -1}


class Inferrer:
    """Runs a `LernomaticModel`'s forward pass on a chosen device.

    `forward` does what the original did, `model.forward(X.to(device))`, and nothing more: it does
    not switch the model to eval mode or turn gradients off, so a model shared with a trainer is
    left as it was and gradients through the output still work. Call `model.set_eval()` and wrap
    the call in `torch.no_grad()` for plain inference (zoo inferrers' own `forward` do the former).

    Args:
        model: the model, or None to load one later with `load_model`.
        device_id: < 0 for the CPU, N >= 0 for `cuda:N`.
        strict: unknown keyword options raise ConfigError instead of a warning; None:
            LERNOMATIC_STRICT decides.
    """

    def __init__(self, model: Any = None, **kwargs: Any) -> None:
        strict = kwargs.pop('strict', None)
        if strict not in (None, True, False):
            raise ConfigError(f'{type(self).__name__}: strict must be True, False or None, got {strict!r}')
        report_unknown_kwargs(type(self).__name__, [name for name in kwargs if name not in INFERRER_OPTIONS],
                              [*INFERRER_OPTIONS, 'strict'], strict)
        self.model = model
        self.device_id = kwargs.get('device_id', INFERRER_OPTIONS['device_id'])
        self._init_device()
        self._send_to_device()

    def __repr__(self) -> str:
        return type(self).__name__

    def _init_device(self) -> None:
        """Set `self.device` from `device_id`; a GPU this machine lacks is refused here, not at the first forward."""
        self.device = torch_device(self.device_id)

    def _send_to_device(self) -> None:
        if self.model is not None:
            self.model.send_to(self.device)

    def get_model(self) -> Any:
        return self.model

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """`model.forward(X)` with X moved to this inferrer's device."""
        if self.model is None:
            raise ValueError(f'{self!r} has no model: pass one to the constructor or call load_model() first')
        return self.model.forward(X.to(self.device))

    def load_model(self, fname: str, model_key: str = 'model', trusted: bool = False,
                   trusted_modules: list[str] | None = None) -> None:
        """Build the model a checkpoint names and move it to the device.

        Args:
            fname: a Lernomatic `.pkl` (the model's metadata under `model_key`) or an adapter `.ckpt`.
            model_key: the key of the model's metadata, e.g. 'generator' in a GAN trainer's checkpoint.
            trusted: unpickle arbitrary objects and import any module the file names (only for files you trust).
            trusted_modules: module prefixes (your model packages) the file may make us import
                (docs/reliability.md).
        """
        with loading(fname, trusted, trusted_modules):
            try:
                data = safe_load(fname, trusted=trusted)
                if is_lightning_checkpoint(data):
                    data, model_key = lernomatic_from_lightning(data, {}, fname), 'model'
                model = build_wrapper(read_model_params(data, fname, model_key), LernomaticModel, f'[{model_key!r}]')
            except CheckpointError:
                raise
            except Exception as error:  # a file's odd shape surfaces as almost any type deeper down (a wrapper's own
                # set_params, a Lightning loop state): one error type, as the trainer's loaders give
                raise CheckpointError(f'{fname}: its contents do not build a model: {type(error).__name__}: '
                                      f'{short_repr(str(error), 300)}') from error
        self.model = model  # only once the whole rebuild succeeded
        self._send_to_device()

"""`Inferrer`: a forward-pass wrapper that loads its model from a Lernomatic or Lightning checkpoint."""

from __future__ import annotations

from typing import Any

import torch

from compat.checkpoint import read_model_params
from compat.lightning_ckpt import is_lightning_checkpoint, lernomatic_from_lightning
from compat.model_import import build_wrapper
from compat.serialization import safe_load
from compat.trust import loading
from lernomatic.models.common import LernomaticModel

__all__ = ['Inferrer']


class Inferrer:
    """Runs a `LernomaticModel` in eval mode without gradients.

    Args:
        model: the model, or None to load one later with `load_model`.
        device_id: -1 for the CPU, N for `cuda:N`.
    """

    def __init__(self, model: Any = None, device_id: int = -1) -> None:
        self.model = model
        self.device_id = device_id
        self.device = torch.device('cpu') if device_id < 0 else torch.device(f'cuda:{device_id}')
        self._send_to_device()

    def __repr__(self) -> str:
        return f'Inferrer({self.model!r}, device={self.device})'

    def _send_to_device(self) -> None:
        if self.model is not None:
            self.model.send_to(self.device)

    def load_model(self, fname: str, model_key: str = 'model', trusted: bool = False,
                   trusted_modules: list[str] | None = None) -> None:
        """Build the model a checkpoint names: a Lernomatic `.pkl` (under `model_key`) or an adapter `.ckpt`.

        The names in the file pass the trust policy (docs/reliability.md); `trusted_modules` adds
        module prefixes (your model packages) it may import.
        """
        with loading(fname, trusted, trusted_modules):
            data = safe_load(fname, trusted=trusted)
            if is_lightning_checkpoint(data):
                data, model_key = lernomatic_from_lightning(data, {}, fname), 'model'
            self.model = build_wrapper(read_model_params(data, fname, model_key), LernomaticModel, f'[{model_key!r}]')
        self._send_to_device()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.model is None:
            raise ValueError('Inferrer has no model: pass one to the constructor or call load_model() first')
        self.model.set_eval()
        with torch.no_grad():
            return self.model.forward(X.to(self.device))

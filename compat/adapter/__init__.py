"""Lernomatic pieces for plain Lightning users: any `LernomaticModel` as a `LightningModule`, schedules as callbacks."""

from compat.adapter.module import LernomaticModule, evaluate_batch, model_metadata
from compat.adapter.schedule_callback import ScheduleCallback

__all__ = ['LernomaticModule', 'ScheduleCallback', 'evaluate_batch', 'model_metadata']

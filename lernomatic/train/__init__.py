"""Lernomatic trainers (`lernomatic.train.trainer.Trainer`)."""

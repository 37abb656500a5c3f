"""Inference with models loaded from checkpoints (`lernomatic.infer.inferrer.Inferrer`)."""

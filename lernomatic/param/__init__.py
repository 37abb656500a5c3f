"""Hyper-parameter tools (`lernomatic.param.lr_common.LogFinder`)."""

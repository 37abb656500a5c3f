"""Lernomatic model wrappers (`lernomatic.models.common.LernomaticModel`)."""

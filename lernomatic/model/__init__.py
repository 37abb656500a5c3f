"""The user guide's spelling of `lernomatic.models`: the same modules under a second name."""

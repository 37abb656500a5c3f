# The old checkout's own copy of the Trainer base class, replaced by this project's.
raise RuntimeError('the legacy tree copy of lernomatic.train.trainer was imported')

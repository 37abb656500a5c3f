"""The Lightning side of lernomatic-lightning, in four rooms (docs/architecture.md):

- `compat.codec`: the file formats, one declared schema, safe reading, crash-safe writing;
- `compat.state`: what is kept on a Lernomatic trainer: declared histories, the run state, a typed protocol;
- `compat.loop`: a trainer's epochs on Lightning's loops (session, bridge, steps, bookkeeping);
- `compat.adapter`: pieces for plain Lightning users (`LernomaticModule`, `ScheduleCallback`).

Shared by all: `errors`, `kwargs`, `logs`, `distributed`, `devices`, `optim`, `schedules`, and
`lightning_internals`, the only module that touches Lightning's private surface.
"""

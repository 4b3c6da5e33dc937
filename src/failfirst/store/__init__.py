"""The store: where jobs, leases, effects and the event log live.

One interface, one module per backend: :mod:`failfirst.store.sqlite` (the
embedded default: ``:memory:`` for simulation, a WAL file for real runs). Each
backend owns all of its SQL; the processor, the simulator and the checkers see
only the interface re-exported here.
"""

# Re-exported without __all__: the API reference documents each name once, where it lives.
from failfirst.store.sqlite import (  # noqa: F401
    APPLICATION_ID,
    EVENT_COLUMNS,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    Clock,
    Job,
    Store,
    StoreError,
)

"""The store: where jobs, leases, effects and the event log live.

One interface (:mod:`failfirst.store.interface`), one module per backend:
:mod:`failfirst.store.sqlite` (the embedded default: ``:memory:`` for simulation, a
WAL file for real runs) and :mod:`failfirst.store.postgresql` (psycopg 3, for workers
on many machines). Each backend owns all of its SQL; the processor, the simulator and
the checkers see only the interface. :mod:`failfirst.store.url` parses a ``--store``
URL and :mod:`failfirst.store.factory` opens the store it names;
:mod:`failfirst.store.clock` holds the clocks (the store's clock decides leases);
:mod:`failfirst.store.pgtools` starts and checks PostgreSQL servers of one's own.

Layer 0: imports nothing else of failfirst.
"""

# Re-exported without __all__: the API reference documents each name once, where it lives.
from failfirst.store.factory import open_store, simulation_store  # noqa: F401
from failfirst.store.interface import Clock, Job, JobStore, StoreError, StoreUnavailable  # noqa: F401
from failfirst.store.rows import EVENT_COLUMNS  # noqa: F401
from failfirst.store.sqlite import (  # noqa: F401
    APPLICATION_ID,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    Store,
)
from failfirst.store.url import StoreURL, parse_store_url  # noqa: F401

"""Real runs: worker processes on a real store (a SQLite file or PostgreSQL), faults
struck at them for real, and the verdict on what they left.

- :mod:`~failfirst.realrun.process`: one worker or reaper process (``python -m
  failfirst.realrun.process``), the worker loop driven by the wall clock;
- :mod:`~failfirst.realrun.stress`: a fleet of them under SIGKILL, and ``check`` and
  ``resume`` of the store a run left;
- :mod:`~failfirst.realrun.pgstress`: PostgreSQL's own faults (terminated
  connections, a server crash, a partition).

Layer 4: imports :mod:`failfirst.store`, :mod:`failfirst.processor` and
:mod:`failfirst.proofs` (the checkers judge a real run as they judge a simulated one).
"""

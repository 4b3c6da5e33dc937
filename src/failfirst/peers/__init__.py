"""The crash experiment against the queues people run (``failfirst peers``).

One workload, one seeded SIGKILL schedule and one judge, applied to Celery, RQ,
huey, Dramatiq, procrastinate, pgqueuer and failfirst itself:

- :mod:`failfirst.peers.ledger`: the independent ledger every handler appends to
  (``started`` and ``finished`` rows, no uniqueness) and the workload's handler;
- :mod:`failfirst.peers.judge`: one category per job from the ledger and the
  system's public state, nothing else;
- :mod:`failfirst.peers.harness`: one run (enqueue, start the workers as their
  documentation says to run them, kill the processes holding jobs, restart, wait
  for the quiet period, judge) with every wait bounded and every child killed;
- one adapter module per system (``sys_*.py``): adding a system is adding an adapter;
- :mod:`failfirst.peers.matrix`: every configuration, several seeds, ``results.json``.
"""

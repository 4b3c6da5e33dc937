"""The benchmarks (`make bench`, `make stress`, `make bench-explore`).

A package so that the Performance chapter imports them by name from wherever a
notebook runs (the editable install puts the repository on ``sys.path``); each
module is also a script that its Make target runs.
"""

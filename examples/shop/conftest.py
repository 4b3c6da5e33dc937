"""examples/shop is its own small package: this folder goes on sys.path (pytest's
rootdir-relative import of a conftest without __init__.py), so ``import shop`` works
as it would in the shop's own repository."""

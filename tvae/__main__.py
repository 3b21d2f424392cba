"""``python -m tvae``: the command line (see :mod:`tvae.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

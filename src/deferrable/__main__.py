"""`python -m deferrable` runs the command-line interface."""

from deferrable.cli import main

raise SystemExit(main())

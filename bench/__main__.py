"""`python -m bench` (`make bench`): see bench.cli."""

from bench.cli import main

raise SystemExit(main())

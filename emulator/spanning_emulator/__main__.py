"""`python -m spanning_emulator`: same as the spanning-emulator command."""

from .cli import main

raise SystemExit(main())

"""`python -m tap_spanning` runs the tap."""

from tap_spanning.tap import main

main()

"""`python -m tap_spanning` runs the tap."""

from tap_spanning.entry import main

main()

"""``python -m transferlab`` (and ``accelerate launch -m transferlab``): the command line."""

from transferlab.cli import main

main()

"""`python -m activeit` (and `accelerate launch -m activeit`) runs the CLI."""

from activeit.cli import main

main()

"""`python -m seglens` runs the command line."""
from .cli import main

main()

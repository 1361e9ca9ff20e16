"""``python -m neurocc`` runs the command line."""
import sys

from neurocc.cli import main

sys.exit(main())

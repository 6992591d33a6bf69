"""`python -m pes_rl.evaluate`: evaluate a run, or film it (``pes_rl.cli.evaluate``)."""

import sys

from pes_rl.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())

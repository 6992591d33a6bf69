"""`python -m pes_rl.plot`: plot runs' curves (``pes_rl.cli.plot``)."""

import sys

from pes_rl.cli.plot import main

if __name__ == "__main__":
    sys.exit(main())

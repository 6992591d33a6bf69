"""`python -m pes_rl.train`: train an agent (``pes_rl.cli.train``)."""

import sys

from pes_rl.cli.train import main

if __name__ == "__main__":
    sys.exit(main())

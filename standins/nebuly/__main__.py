"""`python -m standins.nebuly`: run the Nebuly stand-in (see server.main)."""

import sys

from standins.nebuly.server import main

sys.exit(main())

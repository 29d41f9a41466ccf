"""`python -m standins.okta`: run the Okta stand-in (see server.main)."""

from standins.okta.server import main

main()

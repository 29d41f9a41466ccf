"""`python -m standins.google`: run the Google Workspace stand-in (see server.main)."""

from standins.google.server import main

main()

"""`python -m standins.entra`: run the Microsoft Graph stand-in (see server.main)."""

from standins.entra.server import main

main()

"""Nebuly user-roster API: client and a local stand-in server for tests and demos."""

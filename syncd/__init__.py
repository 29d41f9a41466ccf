"""syncd: keeps a Nebuly project's user roster equal to the company directory."""

__version__ = "0.1.0"

"""Directory sources: each reads a complete roster or fails."""

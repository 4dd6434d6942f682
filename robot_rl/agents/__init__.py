"""Learning algorithms: each agent in its own module, imported by name."""

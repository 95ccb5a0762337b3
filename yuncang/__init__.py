"""yuncang composition root: settings, CLI, database pool and migrations, embedded services, web app."""

__version__ = "0.1.0"

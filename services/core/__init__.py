"""What every part of the domain stands on: settings, the database with its schema and table models, typed errors,
signatures, the version and per-user work slots."""

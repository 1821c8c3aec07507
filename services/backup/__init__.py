"""Backups of the embedded layout (a SQLite file, the local audio folder, the secret) and their restore."""

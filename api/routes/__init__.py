"""One module per resource, each with a module-level `router`; api/__init__.py puts them under /api."""

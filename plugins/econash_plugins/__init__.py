"""First-party econash plugins, installed as the import package ``econash_plugins``.

Each module is one plugin, registered only through an entry point of the ``econash`` group in
pyproject.toml, exactly as a third-party plugin would be.
"""

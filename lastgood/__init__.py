"""lastgood: the undo button for business operations.

Versioned configuration, health-gated deploys with automatic rollback to the last known good
version, and one-command rollback. Importing this package is cheap: heavy parts load lazily.
"""

__version__ = "0.1.0"

"""The app's settings, read from the environment when this module is imported.

As in many a Django or Flask app, a required variable is read with `os.environ[...]`, so a
missing one ends the import (and the app) with `KeyError: 'DATABASE_URL'`.
"""

from __future__ import annotations

import os

DATABASE_URL = os.environ["DATABASE_URL"]
PORT = int(os.environ.get("PORT", "8000"))

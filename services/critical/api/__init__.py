"""HTTP routes of the critical service, one blueprint per resource under ``/v1``."""

from __future__ import annotations

from flask import Blueprint, Flask

from services.critical.api.accounts import bp as accounts
from services.critical.api.transfers import bp as transfers


def register(app: Flask) -> None:
    """Mount every resource blueprint under ``/v1``."""
    v1 = Blueprint("v1", __name__, url_prefix="/v1")
    v1.register_blueprint(accounts)
    v1.register_blueprint(transfers)
    app.register_blueprint(v1)

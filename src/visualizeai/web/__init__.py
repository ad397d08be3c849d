"""Web: FastAPI app factory, JSON + binary API under /api/v1, Jinja2 pages and the static front end."""

from visualizeai.web.app import create_app

__all__ = ["create_app"]

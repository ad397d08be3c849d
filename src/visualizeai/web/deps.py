"""What handlers receive through FastAPI's ``Depends``: the app's one ``Service``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from visualizeai.service import Service


def get_service(request: Request) -> Service:
    """The ``Service`` the app factory put on ``app.state`` (tests inject theirs through ``create_app``)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]

"""The one route open without credentials: is this web process up, and can it reach the
database? It says nothing else (no version, no counts)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ..deps import CorralApp
from ..problems import Problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/health", response_model=Health)
def health(app: CorralApp) -> Health:
    try:
        app.store.schema_version()
    except Exception:
        raise Problem(503, "Service unavailable", "the database can't be reached") from None
    return Health(status="ok")

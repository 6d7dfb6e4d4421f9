"""Orders and trades of the signed-in member: place, cancel, amend, read."""

from __future__ import annotations

from fastapi import APIRouter

from api.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["market"], responses=PROBLEM_RESPONSES)

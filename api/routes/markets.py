"""Public market data: the books, their depth, trade tape, candles, statistics, stream."""

from __future__ import annotations

from fastapi import APIRouter

from api.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["market"], responses=PROBLEM_RESPONSES)

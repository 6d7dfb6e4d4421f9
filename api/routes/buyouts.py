"""Routes of issue 14 (buyouts); filled in by the work on it."""

from fastapi import APIRouter

from api.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

"""The console dialect's context observatory and feedback routes (seed 5). Validation errors
here are 422 (a grade outside 1-5), in the console's `{"error": msg}` shape."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from podium.api._deps import CoreDep
from podium.api._dialect import Dialect, plain_error
from podium.errors import Unprocessable

FEEDBACK = Dialect("console", plain_error, validation=Unprocessable)
router = FEEDBACK.router(prefix="/api", tags=["console"])


class Grade(BaseModel):
    """A turn's grade from 1 to 5, with an optional comment."""

    model_config = ConfigDict(strict=True, extra="forbid")

    grade: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=10_000)


@router.get("/sessions/{session_id}/turns")
async def session_turns(session_id: str, core: CoreDep):
    return await core.observatory.session_turns(session_id)


@router.get("/sessions/{session_id}/insights")
async def session_insights(session_id: str, core: CoreDep):
    return await core.observatory.insights(session_id)


@router.post("/sessions/{session_id}/analyze")
async def analyze_session(session_id: str, core: CoreDep):
    return await core.observatory.analyze_session(session_id)


@router.get("/sessions/{session_id}/feedback")
async def session_feedback(session_id: str, core: CoreDep):
    return await core.feedback.for_session(session_id)


@router.get("/turns/{turn_id}")
async def turn(turn_id: str, core: CoreDep):
    return await core.observatory.turn(turn_id)


@router.get("/turns/{turn_id}/context")
async def turn_context(turn_id: str, core: CoreDep):
    return await core.observatory.context(turn_id)


@router.get("/turns/{turn_id}/tools")
async def turn_tools(turn_id: str, core: CoreDep):
    return await core.observatory.tools(turn_id)


@router.get("/turns/{turn_id}/tips")
async def turn_tips(turn_id: str, core: CoreDep):
    return await core.observatory.tips(turn_id)


@router.get("/turns/{turn_id}/model-selection")
async def turn_model_selection(turn_id: str, core: CoreDep):
    return await core.observatory.model_selection(turn_id)


@router.post("/turns/{turn_id}/analyze")
async def analyze_turn(turn_id: str, core: CoreDep):
    return await core.observatory.analyze_turn(turn_id)


@router.post("/turns/{turn_id}/feedback", status_code=201)
async def submit_feedback(turn_id: str, body: Grade, core: CoreDep):
    return await core.feedback.submit(turn_id, body.grade, body.comment)


@router.get("/turns/{turn_id}/feedback")
async def get_feedback(turn_id: str, core: CoreDep):
    return await core.feedback.get(turn_id)


@router.put("/turns/{turn_id}/feedback")
async def update_feedback(turn_id: str, body: Grade, core: CoreDep):
    return await core.feedback.update(turn_id, body.grade, body.comment)

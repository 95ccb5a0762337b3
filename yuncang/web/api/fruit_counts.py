"""Sample-tree fruit counts (table ``fruit_counts``, owned by orchard_models, which assimilates them
into the next forecast run: :mod:`orchard_models.fruit_counts`)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from orchard_models.fruit_counts import MAX_FRUIT_PER_TREE, CountRecord, add_fruit_count
from yuncang.web.common import AUTH_ERRORS, NOT_FOUND, reject_nul
from yuncang.web.deps import Conn, CurrentUser, check_csrf, require_orchard, require_roles

router = APIRouter(prefix="/api/v1", tags=["farm records"], dependencies=[Depends(reject_nul)])

#: who may record counts: the orchard's grower, its cooperative's managers (technicians sign in as
#: managers: the user table has no technician role yet), and admins
ROLES = ("grower", "manager", "admin")


class TreeCount(BaseModel):
    tree_id: str = Field(min_length=1, max_length=50, description="the sample tree's label in the orchard")
    fruit: float = Field(ge=0, le=MAX_FRUIT_PER_TREE, description="fruits counted on the tree")

    @field_validator("fruit")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("fruit must be a finite number")
        return v


class CountIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=100,
                           description="the client's id for this submission: sending it again is harmless")
    counted_on: date = Field(description="day of the count (Asia/Shanghai calendar day)")
    trees: list[TreeCount] = Field(min_length=1, max_length=200)
    mean_fruit_g: float | None = Field(default=None, gt=0, le=500, description="mean fresh mass of a fruit, g")

    @field_validator("counted_on")
    @classmethod
    def _not_future(cls, v: date) -> date:
        if v > date.today() or v.year < 2000:
            raise ValueError("counted_on must be a past or present day after 2000")
        return v

    @model_validator(mode="after")
    def _distinct_trees(self) -> CountIn:
        ids = [t.tree_id for t in self.trees]
        if len(set(ids)) != len(ids):
            raise ValueError("each sample tree may appear once per count")
        return self


class CountOut(BaseModel):
    count_id: int
    client_id: str
    orchard_id: str
    counted_on: date
    tree_ids: list[str]
    fruit_per_tree: list[float]
    mean_fruit_g: float | None
    recorded_by: str | None
    recorded_at: datetime


@router.post(
    "/orchards/{orchard_id}/fruit-counts",
    response_model=CountOut,
    status_code=201,
    responses={**AUTH_ERRORS, **NOT_FOUND, 200: {"model": CountOut, "description": "already recorded (same client_id)"},
               409: {"description": "client_id already used for a different count"}},
)
def add_count(request: Request, response: Response, orchard_id: str, body: CountIn, p: CurrentUser,
              conn: Conn) -> Any:
    """Record fruit counts on sample trees of your orchard; the next forecast run uses them."""
    require_roles(p, *ROLES)
    check_csrf(request, p)
    require_orchard(conn, p, orchard_id)
    rec = CountRecord(client_id=body.client_id, orchard_id=orchard_id, counted_on=body.counted_on,
                      tree_ids=[t.tree_id for t in body.trees], fruit_per_tree=[t.fruit for t in body.trees],
                      mean_fruit_g=body.mean_fruit_g, recorded_by=p.username)
    row, created = add_fruit_count(conn, rec)   # a reused client_id with other content: Conflict -> 409
    if not created:
        response.status_code = 200
    return row

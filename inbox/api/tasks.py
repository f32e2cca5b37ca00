"""REST routes of tasks: my or my teams' tasks, and completing one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select

from crm.models import Task
from inbox.api.router import API, ApiRequest, decode_cursor, encode_cursor, not_found
from inbox.schemas import TaskOut, TaskPage, TaskQuery


def now() -> datetime:
    return datetime.now(UTC)


@API.route(
    "GET",
    "/api/tasks",
    summary="My or my teams' tasks",
    tag="tasks",
    query=TaskQuery,
    response=TaskPage,
)
async def list_tasks(req: ApiRequest) -> TaskPage:
    q: TaskQuery = req.query
    p = req.principal
    query = select(Task).where(Task.status == q.status)
    if q.scope == "mine":
        query = query.where(Task.assignee_id == p.user_id)
    elif q.scope == "team" or not p.is_admin:
        query = query.where(or_(Task.team_id.in_(p.team_ids or [0]), Task.assignee_id == p.user_id))
    if (cursor := decode_cursor(q.cursor)) is not None:
        query = query.where(Task.id > int(cursor[0]))
    query = query.order_by(Task.id).limit(q.limit + 1)
    async with req.sessions() as session:
        rows = list((await session.scalars(query)).all())
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return TaskPage(
        items=[TaskOut.model_validate(t) for t in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@API.route(
    "POST",
    "/api/tasks/{task_id}/complete",
    summary="Complete a task",
    tag="tasks",
    response=TaskOut,
)
async def complete_task(req: ApiRequest) -> TaskOut:
    p = req.principal
    async with req.sessions() as session, session.begin():
        task = await session.get(Task, req.path_int("task_id"), with_for_update=True)
        allowed = task is not None and (
            p.is_admin
            or task.assignee_id == p.user_id
            or (task.team_id in p.team_ids and p.role == "manager")
        )
        if task is None or not allowed:
            raise not_found("task")
        task.status, task.completed_at = "done", now()
    return TaskOut.model_validate(task)

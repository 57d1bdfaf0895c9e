"""Tasks for people: handoffs to a human agent, phone calls, scam reports, low ratings."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.domain.errors import InvalidTransition, NotFound
from bot.persistence.models import Task
from bot.services.after_sales import Actor, audit
from bot.services.context import Services


@dataclass(frozen=True)
class TaskView:
    id: int
    kind: str
    buyer_id: int
    after_sale_id: int | None
    note: str
    status: str
    created_at: datetime
    taken_by: str | None

    @classmethod
    def of(cls, row: Task) -> "TaskView":
        return cls(row.id, row.kind, row.buyer_id, row.after_sale_id, row.note, row.status, row.created_at, row.taken_by)


def open_task(svc: Services, *, kind: str, buyer_id: int, note: str = "", after_sale_id: int | None = None,
              actor: Actor) -> TaskView:
    """Open a task unless the same kind is already open for this buyer (and request)."""
    with svc.sessions() as session, session.begin():
        existing = session.scalar(select(Task).where(
            Task.kind == kind, Task.buyer_id == buyer_id, Task.status != "done",
            (Task.after_sale_id == after_sale_id) if after_sale_id is not None else Task.after_sale_id.is_(None)))
        if existing is not None:
            return TaskView.of(existing)
        now = svc.clock.now()
        row = Task(kind=kind, buyer_id=buyer_id, after_sale_id=after_sale_id, note=note[:2000], status="open",
                   created_at=now)
        session.add(row)
        session.flush()
        audit(session, at=now, actor=actor, action=f"task_{kind}", rule=f"task.{kind}", order_id=None,
              data={"task_id": row.id, "buyer_id": buyer_id, "after_sale_id": after_sale_id})
        return TaskView.of(row)


def open_tasks(svc: Services, kind: str | None = None) -> list[TaskView]:
    with svc.sessions() as session:
        query = select(Task).where(Task.status != "done").order_by(Task.created_at, Task.id)
        if kind:
            query = query.where(Task.kind == kind)
        return [TaskView.of(t) for t in session.scalars(query)]


def move_task(svc: Services, task_id: int, *, to: str, actor: Actor) -> TaskView:
    """open -> taken -> done (taking a handoff pauses the bot; finishing it hands back)."""
    allowed = {"open": {"taken", "done"}, "taken": {"done"}}
    with svc.sessions() as session, session.begin():
        row = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
        if row is None:
            raise NotFound("找不到这个任务", task_id=task_id)
        if to not in allowed.get(row.status, set()):
            raise InvalidTransition(f"cannot move a {row.status} task to {to}", status=row.status, to=to)
        now = svc.clock.now()
        row.status = to
        row.taken_by = row.taken_by or actor.name
        if to == "done":
            row.done_at = now
        audit(session, at=now, actor=actor, action=f"task_{to}", rule=f"task.{row.kind}",
              data={"task_id": row.id, "buyer_id": row.buyer_id})
        return TaskView.of(row)


def buyer_in_handoff(svc: Services, buyer_id: int) -> bool:
    with svc.sessions() as session:
        return session.scalar(select(Task.id).where(Task.kind == "handoff", Task.buyer_id == buyer_id,
                                                    Task.status != "done").limit(1)) is not None

"""What a submission writes in its one transaction: the request, its lines, the buyer's photos, a phone-call task
for a quality return, and the audit event."""

from sqlalchemy import select

from bot.persistence.models import AfterSale, AfterSaleItem, Event, Evidence, Task
from bot.services import after_sales
from bot.services.evidence import save_evidence

PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


def test_a_submission_writes_the_request_its_lines_photos_task_and_event(svc):
    own, others, used = (save_evidence(svc, buyer_id=b, data=PNG) for b in (3, 2, 3))
    earlier = after_sales.submit(svc, buyer_id=2, order_no="202611200000000201", reason="quality",
                                 evidence_ids=[used])  # buyer 2 cannot take buyer 3's photo
    view = after_sales.submit(svc, buyer_id=3, order_no="202611200000000301", reason="quality",
                              resolution="return_refund", words="开线了", evidence_ids=[own, others, used])
    with svc.sessions() as session:
        row = session.get(AfterSale, view.id)
        assert (row.status, row.reason, row.buyer_words, row.version) == ("requested", "quality", "开线了", 1)
        assert (view.version, view.refund_fen, view.deadline_at) == (1, row.refund_fen + row.freight_refund_fen,
                                                                     row.deadline_at)
        assert [(i.order_item_id, i.quantity) for i in row.items] == [(line.order_item_id, line.quantity)
                                                                     for line in view.lines]
        photos = {e.id: e.after_sale_id for e in session.scalars(select(Evidence))}
        assert photos == {own: view.id, others: None, used: view.id}  # only the buyer's own, unattached ones
        assert session.scalar(select(Task.kind).where(Task.after_sale_id == view.id)) == "phone_call"
        [event] = session.scalars(select(Event).where(Event.after_sale_id == view.id)).all()
        assert (event.actor, event.action, event.to_status, event.data["refund_fen"]) == (
            "buyer:3", "submit", "requested", view.refund_fen)
        assert session.scalar(select(AfterSaleItem.after_sale_id).where(AfterSaleItem.after_sale_id == earlier.id))

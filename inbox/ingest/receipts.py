"""Delivery receipts (WhatsApp statuses): move our outbound messages forward, never back."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import InboundMessage

# A receipt only moves a message forward: read after delivered, never delivered after read.
RANKS = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}

APPLY = text(
    """
    UPDATE messages AS m
    SET status = r.status, error = COALESCE(r.error, m.error)
    FROM unnest(
        CAST(:channels AS text[]), CAST(:ids AS text[]), CAST(:statuses AS text[]),
        CAST(:errors AS text[]), CAST(:ranks AS int[])
    ) AS r(channel_id, provider_id, status, error, rank)
    WHERE m.direction = 'outbound'
      AND m.channel_id = r.channel_id
      AND (m.meta ->> 'provider_id') = r.provider_id
      AND CASE m.status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3
          WHEN 'failed' THEN 4 ELSE 0 END < r.rank
    """
)


async def apply_receipts(session: AsyncSession, receipts: list[tuple[str, InboundMessage]]) -> None:
    """Apply the receipts of a batch, as (channel id, receipt message), in one statement."""
    rows: list[tuple[str, str, str, str | None, int]] = []
    for channel_id, msg in receipts:
        listed = msg.meta.get("receipts")
        for receipt in listed if isinstance(listed, list) else []:
            if not isinstance(receipt, dict):
                continue
            status, of, error = receipt.get("status"), receipt.get("of"), receipt.get("error")
            if isinstance(status, str) and status in RANKS and isinstance(of, str):
                note = str(error)[:2000] if error is not None else None
                rows.append((channel_id, of, status, note, RANKS[status]))
    if not rows:
        return
    # Several receipts for one message in a batch: the furthest one wins.
    rows.sort(key=lambda row: row[4])
    best = {(row[0], row[1]): row for row in rows}
    channels, ids, statuses, errors, ranks = (
        list(column) for column in zip(*best.values(), strict=True)
    )
    await session.execute(
        APPLY,
        {"channels": channels, "ids": ids, "statuses": statuses, "errors": errors, "ranks": ranks},
    )

"""Write outbound webhook events into the outbox, set-based, in the transaction of the change:
one statement per batch of ingested events or per API change, one row per subscriber."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CONVERSATION = (
    "jsonb_build_object('id', c.id, 'channel_id', c.channel_id, 'status', c.status, "
    "'subject', c.subject, 'priority', c.priority, 'assignee_id', c.assignee_id, "
    "'team_id', c.team_id, 'contact_id', c.contact_id, 'relation_id', c.relation_id, "
    "'lead_id', c.lead_id, 'created_at', c.created_at, 'resolved_at', c.resolved_at)"
)
MESSAGE = (
    "jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id, "
    "'channel_id', m.channel_id, 'direction', m.direction, 'kind', m.kind, "
    "'subject', m.subject, 'text', m.text, 'sender_name', m.sender_name, 'sent_at', m.sent_at)"
)
LEAD = (
    "jsonb_build_object('id', l.id, 'name', l.name, 'company', l.company, 'status', l.status, "
    "'source_channel_id', l.source_channel_id, 'owner_id', l.owner_id, 'fields', l.fields)"
)
TASK = (
    "jsonb_build_object('id', t.id, 'kind', t.kind, 'title', t.title, 'status', t.status, "
    "'priority', t.priority, 'due_at', t.due_at, 'assignee_id', t.assignee_id, "
    "'team_id', t.team_id, 'conversation_id', t.conversation_id, 'contact_id', t.contact_id, "
    "'relation_id', t.relation_id, 'lead_id', t.lead_id)"
)
CALL = (
    "jsonb_build_object('id', a.id, 'direction', a.direction, 'outcome', a.outcome, "
    "'occurred_at', a.occurred_at, 'duration_s', a.duration_s, 'agent', a.agent, "
    "'contact_id', a.contact_id, 'relation_id', a.relation_id, 'lead_id', a.lead_id, "
    "'conversation_id', a.conversation_id)"
)

# Fan the events (columns: event_type, conversation_id, data, seq, rank) out to the active
# subscribers in event order, so delivery ids grow in the order the changes happened. The
# EXISTS is evaluated once: with no subscriber the sources are never read.
FAN_OUT = """
WITH ev AS MATERIALIZED (
    SELECT gen_random_uuid() AS event_id, src.* FROM ({sources}) AS src
    WHERE EXISTS (SELECT 1 FROM webhook_subscriptions WHERE active)
)
INSERT INTO webhook_deliveries
    (event_id, subscription_id, event_type, conversation_id, payload, status, attempts)
SELECT ev.event_id, s.id, ev.event_type, ev.conversation_id,
       jsonb_build_object('id', ev.event_id, 'type', ev.event_type,
                          'created_at', now(), 'data', ev.data),
       'pending', 0
FROM ev JOIN webhook_subscriptions s ON s.active AND ev.event_type = ANY(s.events)
ORDER BY ev.seq, ev.rank, s.id
"""

# What a batch of ingested events changed: its messages, the conversations they opened (and
# whom routing assigned them to), the leads, calls and tasks created with them (rows of this
# transaction carry its now()).
INGEST = f"""
WITH m AS MATERIALIZED (
    -- Two ANY lists the unique (channel_id, external_id) index answers, then the exact pairs.
    SELECT * FROM messages
    WHERE external_id = ANY(CAST(:externals AS text[]))
      AND channel_id = ANY(CAST(:channels AS text[]))
      AND (channel_id, external_id) IN (
          SELECT * FROM unnest(CAST(:channels AS text[]), CAST(:externals AS text[])))
), opened AS (
    SELECT m.* FROM m WHERE NOT EXISTS (
        SELECT 1 FROM messages p WHERE p.conversation_id = m.conversation_id AND p.id < m.id)
), last_of AS (
    SELECT conversation_id, max(id) AS seq FROM m GROUP BY conversation_id
)
SELECT 'conversation.created' AS event_type, c.id AS conversation_id,
       jsonb_build_object('conversation', {CONVERSATION}) AS data, m.id AS seq, 0 AS rank
FROM opened m JOIN conversations c ON c.id = m.conversation_id
UNION ALL
SELECT 'conversation.assigned', c.id,
       jsonb_build_object('conversation', {CONVERSATION}, 'actor_id', NULL), m.id, 1
FROM opened m JOIN conversations c ON c.id = m.conversation_id AND c.assignee_id IS NOT NULL
UNION ALL
SELECT 'lead.created', c.id, jsonb_build_object('lead', {LEAD}, 'conversation_id', c.id),
       m.id, 2
FROM opened m JOIN conversations c ON c.id = m.conversation_id
JOIN leads l ON l.id = c.lead_id AND l.created_at = now()
UNION ALL
SELECT 'message.created', c.id,
       jsonb_build_object('message', {MESSAGE}, 'conversation', {CONVERSATION}), m.id, 3
FROM m JOIN conversations c ON c.id = m.conversation_id
UNION ALL
SELECT 'call.logged', m.conversation_id, jsonb_build_object('call', {CALL}), m.id, 4
FROM m JOIN activities a
  ON a.channel_id = m.channel_id AND a.external_id = m.external_id AND a.kind = 'call'
UNION ALL
SELECT 'task.created', t.conversation_id, jsonb_build_object('task', {TASK}), last_of.seq, 5
FROM last_of JOIN tasks t ON t.conversation_id = last_of.conversation_id AND t.created_at = now()
"""

CONVERSATIONS = f"""
SELECT CAST(:event_type AS text) AS event_type, c.id AS conversation_id,
       jsonb_build_object('conversation', {CONVERSATION}, 'actor_id', CAST(:actor AS bigint))
           AS data,
       c.id AS seq, 0 AS rank
FROM conversations c WHERE c.id = ANY(CAST(:ids AS bigint[]))
"""

MESSAGES = f"""
SELECT 'message.created' AS event_type, c.id AS conversation_id,
       jsonb_build_object('message', {MESSAGE}, 'conversation', {CONVERSATION}) AS data,
       m.id AS seq, 0 AS rank
FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.id = ANY(CAST(:ids AS bigint[]))
"""

TASKS = f"""
SELECT CAST(:event_type AS text) AS event_type, t.conversation_id,
       jsonb_build_object('task', {TASK}) AS data, t.id AS seq, 0 AS rank
FROM tasks t WHERE t.id = ANY(CAST(:ids AS bigint[]))
"""


async def emit_ingested(session: AsyncSession, new_messages: Collection[tuple[str, str]]) -> int:
    """The events of the messages a batch created, given as (channel id, external id): one
    statement for the batch."""
    if not new_messages:
        return 0
    pairs = sorted(new_messages)
    params = {"channels": [p[0] for p in pairs], "externals": [p[1] for p in pairs]}
    return await _fan_out(session, INGEST, params)


async def emit_conversations(
    session: AsyncSession, event_type: str, ids: Sequence[int], actor_id: int | None = None
) -> int:
    """conversation.assigned / conversation.resolved for these conversations (flushed)."""
    if not ids:
        return 0
    await session.flush()
    params = {"event_type": event_type, "ids": list(ids), "actor": actor_id}
    return await _fan_out(session, CONVERSATIONS, params)


async def emit_messages(session: AsyncSession, ids: Sequence[int]) -> int:
    """message.created for messages written outside ingest: agents' and bots' replies (flushed)."""
    if not ids:
        return 0
    await session.flush()
    return await _fan_out(session, MESSAGES, {"ids": list(ids)})


async def emit_tasks(session: AsyncSession, event_type: str, ids: Sequence[int]) -> int:
    """task.created / task.overdue for these tasks (flushed)."""
    if not ids:
        return 0
    await session.flush()
    return await _fan_out(session, TASKS, {"event_type": event_type, "ids": list(ids)})


async def _fan_out(session: AsyncSession, sources: str, params: Mapping[str, object]) -> int:
    result = await session.execute(text(FAN_OUT.format(sources=sources)), params)
    return int(getattr(result, "rowcount", 0) or 0)

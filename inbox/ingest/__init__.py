"""Ingest: the accept path (`webhooks`), the event journal (`journal`), channel instances
(`channels`) and the processing pipeline (`pipeline`). It may import `inbox.bot` and
`inbox.routing`; the API and the workers import it."""

"""Outbound webhooks: subscriptions, the transactional outbox of events, signed delivery."""

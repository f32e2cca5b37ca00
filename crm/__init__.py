"""The system of record: CRM models, normalisers, matching."""

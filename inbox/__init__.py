"""The Switchboard service: settings, database, web app, ingest pipeline."""

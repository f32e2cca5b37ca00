"""The unified inbox: conversations, messages, threading, linking, realtime, attachments, outbound
replies, users and access. Its subpackages build on it in one direction: `routing` ← `bot` ← `ingest`
← `api` ← `web` ← `service`; the modules at this level import none of them."""

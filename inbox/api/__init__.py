"""The HTTP API: one module per resource, the OpenAPI document (`router`), log-in and token
authentication (`auth`) and the realtime websocket (`ws`). It imports the domain packages; none of
them imports it."""

"""Wiring for the Lambda handlers: settings → AWS clients → domain objects, once per cold start.

One module per function, each importing only what its function runs (a cold start pays for
every import): ``poller`` (list and enqueue), ``processor`` (update and book: idempotency,
rules, the gate), ``digest`` (the morning digest), and ``shared`` (the AWS clients, the Lucca
client behind the tenant budget, the API key). Handlers stay thin: they parse the event, call
into here, and shape the response. Everything takes its AWS clients from
``shared.AwsClients``, so tests hand it moto-backed ones.
"""

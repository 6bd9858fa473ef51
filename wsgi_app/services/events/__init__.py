"""The per-person event stream (``GET /api/events/poll``): producer, reader, retention, schemas.

``producer`` is the only module that writes events or publishes their wake-ups;
``stream`` reads them by cursor; ``retention`` deletes old ones.
"""

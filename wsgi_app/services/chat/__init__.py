"""Chat: sending (idempotent by ``clientMsgId``), history, contacts, media, and wake-ups.

Invariants: messages live in the database and their ids grow in commit order per
recipient, so a cursor never skips one; :mod:`.events` is the one producer of
wake-ups and publishes only after commit (Redis only ever wakes, it holds no
message). URLs: ``/api/chat/...``, ``/api/contacts/...``.
"""

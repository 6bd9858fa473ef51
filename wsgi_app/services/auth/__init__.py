"""Who is calling: signed requests, calling applications, SMS sign-in, tokens, account deletion.

Invariants: the signature and token checks exist once (:mod:`.core`, sans-I/O),
run by a sync executor (:mod:`.request_auth`, Flask) and an async one
(``async_handlers.auth``); secrets and tokens are never logged, tokens are stored
only as their SHA-256. URLs: ``/api/auth/...``, ``/api/account/...``.
"""

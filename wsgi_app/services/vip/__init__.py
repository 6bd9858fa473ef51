"""VIP: the catalogue, orders, payments and the status they extend.

Invariants: VIP time is extended only by a verified payment callback, once per
order; a user is VIP while ``users.vip_expires_at`` lies in the future.
URLs: ``/api/vip/...``, ``/api/payment/...``.
"""

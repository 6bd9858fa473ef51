"""Profiles: showing and updating them, photos, labels, visits ("who viewed me"), the hot list.

Invariants: who may see whom is decided once (:mod:`.visibility`: blocks, then the
owner's ``authority``); wire field names are the contract's (:mod:`.profiles`).
URLs: ``/api/user/...``, ``/api/photo/...``, ``/api/label/...``, ``/api/visitor/...``.
"""

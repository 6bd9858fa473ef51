"""The OpenAPI document, built from the endpoint declarations, the parameters and the error table.

Reads the Flask views' ``endpoint_spec`` and :data:`wsgi_app.declarations.NATIVE_ENDPOINTS`;
imports neither ``wsgi_app.api`` nor ``async_handlers``.
"""

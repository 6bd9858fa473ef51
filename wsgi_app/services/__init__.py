"""Business logic shared by the Flask blueprints and the native Tornado handlers."""

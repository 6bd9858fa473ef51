"""Demo and load-test data (``flask --app wsgi_app seed-demo``); never imported by a request path."""

#!/usr/bin/env bash
# Runs the service on the embedded default (SQLite in ./instance, in-process Redis)
# at http://127.0.0.1:${PORT:-8000}. Set DATABASE_URL / REDIS_URL to use real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export FLASK_APP=wsgi_app
# Development mode: the development secrets are allowed (production refuses to start with them).
export DEV_MODE=${DEV_MODE:-1}
INSTANCE=${INSTANCE_PATH:-instance}
.venv/bin/flask db upgrade
.venv/bin/flask products seed
.venv/bin/flask labels seed
if [ ! -f "$INSTANCE/dev-app.json" ]; then
  .venv/bin/flask apps create --name dev --sign-method hmac-sha256 > "$INSTANCE/dev-app.json"
fi
echo "Application credentials for the signing client ($INSTANCE/dev-app.json):"
cat "$INSTANCE/dev-app.json"
echo "Try: DT_APPKEY=... DT_APPSECRET=... DT_BASE_URL=http://127.0.0.1:${PORT:-8000} .venv/bin/python -m datingtoday_client GET /api/vip/products"
echo "API docs: http://127.0.0.1:${PORT:-8000}/api/docs"
exec .venv/bin/python tornado_server.py "$@"

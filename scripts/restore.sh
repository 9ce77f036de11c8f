#!/usr/bin/env bash
# Restore an AutoVoice backup made by scripts/backup.sh into the configured database and data dir.
#
#   scripts/restore.sh BACKUP        # stop the API server and every worker first
#
# Checks the MANIFEST's sha256 sums, then: SQLite -> the file is copied to the configured path;
# PostgreSQL -> pg_restore --clean --if-exists into the configured database (which must exist, e.g.
# `createdb autovoice`); the data dir archive is unpacked over AUTOVOICE_DATA_DIR. Start the new version
# afterwards: it applies any newer migrations on start (docs/operations.md, "Upgrade").
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BACKUP" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
if [ ! -f "$src/MANIFEST" ]; then
  echo "error: $src/MANIFEST not found: not a backup made by scripts/backup.sh" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
python=${AUTOVOICE_PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=python3

(cd "$src" && grep -E '^[0-9a-f]{64}  ' MANIFEST | sha256sum --check --quiet) || {
  echo "error: the backup in $src is damaged (sha256 mismatch)" >&2
  exit 2
}
saved_backend=$(sed -n 's/^database_backend=//p' "$src/MANIFEST")

mapfile -t conf < <("$python" - <<'EOF'
from sqlalchemy.engine import make_url

from autovoice.config import get_settings
from autovoice.storage.db import database_url

s = get_settings()
url = make_url(database_url(s))
print(s.data_dir.resolve())
print(url.get_backend_name())
print(url.database or "")
print(url.render_as_string(hide_password=False).replace("+psycopg", "") if url.get_backend_name() == "postgresql" else "")
EOF
)
data_dir=${conf[0]} backend=${conf[1]} database=${conf[2]} pg_url=${conf[3]:-}
if [ "$backend" != "$saved_backend" ]; then
  echo "error: the backup holds a $saved_backend database but AUTOVOICE_DATABASE_URL points at $backend" >&2
  exit 2
fi
mkdir -p "$data_dir"

case $backend in
  sqlite)
    rm -f "$database-wal" "$database-shm"
    cp "$src/database.sqlite" "$database.restoring"
    mv -f "$database.restoring" "$database"
    ;;
  postgresql)
    pg_restore --clean --if-exists --no-owner --single-transaction --dbname="$pg_url" "$src/database.pgdump"
    ;;
esac
tar -C "$data_dir" -xzf "$src/data.tar.gz"
echo "restored $src into $data_dir ($backend database); start the server and workers again"

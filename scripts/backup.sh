#!/usr/bin/env bash
# Back up AutoVoice: the database (SQLite or PostgreSQL) and the data dir (profiles, job outputs).
#
#   scripts/backup.sh DEST            # DEST: a new folder; the settings come from AUTOVOICE_* / .env
#
# Writes DEST/database.sqlite (an online, consistent copy through SQLite's backup API) or
# DEST/database.pgdump (pg_dump --format=custom), DEST/data.tar.gz (the data dir without the SQLite
# files, upload scratch folders and the model cache, which re-downloads) and DEST/MANIFEST (what, when,
# which version, sha256 of each file). Safe while the server runs; a job that finishes during the backup
# may be in the database but not in the archive, or the other way round (restore re-queues nothing:
# see docs/operations.md). Restore with scripts/restore.sh DEST.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
dest=$1
if [ -e "$dest" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
  echo "error: $dest exists and is not empty; give a new folder" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
python=${AUTOVOICE_PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=python3

# The effective settings, as the server reads them (environment, then .env).
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
if [ ! -d "$data_dir" ]; then
  echo "error: the data dir $data_dir does not exist (AUTOVOICE_DATA_DIR)" >&2
  exit 2
fi
mkdir -p "$dest"
umask 077  # the database holds API key hashes; the archive holds users' recordings

case $backend in
  sqlite)
    "$python" - "$database" "$dest/database.sqlite" <<'EOF'
import sqlite3
import sys

src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
with dst:
    src.backup(dst)
src.close()
dst.close()
EOF
    db_file=database.sqlite
    ;;
  postgresql)
    pg_dump --format=custom --no-owner --file="$dest/database.pgdump" "$pg_url"
    db_file=database.pgdump
    ;;
  *)
    echo "error: unsupported database backend $backend" >&2
    exit 2
    ;;
esac

tar -C "$data_dir" -czf "$dest/data.tar.gz" \
  --exclude='./autovoice.db' --exclude='./autovoice.db-wal' --exclude='./autovoice.db-shm' \
  --exclude='./uploads' --exclude='./models' .

version=$("$python" -c 'import autovoice; print(autovoice.__version__)')
{
  echo "autovoice_version=$version"
  echo "created_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "database_backend=$backend"
  echo "database_file=$db_file"
  echo "data_dir=$data_dir"
  (cd "$dest" && sha256sum "$db_file" data.tar.gz)
} >"$dest/MANIFEST"
echo "backup written to $dest ($backend database + data dir $data_dir)"

#!/bin/sh
# A worker that checks its database with the real PostgreSQL client before it takes any work,
# the way many entrypoint scripts do: when the database is down, psql says so and exits 2.
set -e
echo "worker: checking the database at $DATABASE_URL"
psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAt -c 'SELECT 1' >/dev/null
echo "worker: database is up; waiting for jobs"
exec sleep 1000000

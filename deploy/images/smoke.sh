#!/usr/bin/env bash
# Build and start the compose stack, wait until every service's health check passes, try the API, stop.
#
#   deploy/images/smoke.sh [-f deploy/compose.offline.yml]   # extra compose files (offline images)
#
# Exit 0 when api, worker, redis and postgres all report "healthy" within TIMEOUT_S (default 600) and
# /health/ready answers 200 on 127.0.0.1:8000; the stack and its volumes are removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
compose=(docker-compose)
docker compose version >/dev/null 2>&1 && compose=(docker compose)
files=(-f deploy/docker-compose.yml "$@")
project=autovoice-smoke
timeout_s=${TIMEOUT_S:-600}
export COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1

cleanup() { "${compose[@]}" -p "$project" "${files[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

"${compose[@]}" -p "$project" "${files[@]}" up -d --build
deadline=$((SECONDS + timeout_s))
for service in postgres redis api worker; do
  while :; do
    id=$("${compose[@]}" -p "$project" "${files[@]}" ps -q "$service")
    state=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
    echo "$(date -u +%T) $service: $state"
    [ "$state" = healthy ] && break
    if [ "$state" = unhealthy ] || [ "$state" = exited ] || [ $SECONDS -gt $deadline ]; then
      "${compose[@]}" -p "$project" "${files[@]}" logs --tail 50 "$service"
      exit 1
    fi
    sleep 5
  done
done
curl -fsS http://127.0.0.1:8000/health/ready && echo
key=$("${compose[@]}" -p "$project" "${files[@]}" exec -T api autovoice apikey create smoke --json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
curl -fsS -o /tmp/autovoice-smoke.wav -H "X-API-Key: $key" -H 'content-type: application/json' \
  -d '{"text": "Hello, world!"}' http://127.0.0.1:8000/api/v1/tts
head -c 4 /tmp/autovoice-smoke.wav | grep -q RIFF
echo "TTS through the stack: $(stat -c %s /tmp/autovoice-smoke.wav) bytes of WAV"
rm -f /tmp/autovoice-smoke.wav
echo "compose stack healthy: api, worker, redis, postgres"

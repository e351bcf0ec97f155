#!/usr/bin/env bash
# `make docker-check`: build the image and run it end to end in Docker; exit non-zero on any
# failure. Not part of `make test`.
#
#  1. Docker: when no daemon answers, install Debian's docker.io (as root) and start dockerd
#     for the check only; it is stopped again at the end.
#  2. Base: python:3.11-slim when it can be pulled, else paper-digest-base:bookworm, built by
#     docker/base.sh (debootstrap) unless already there.
#  3. Build docker/Dockerfile; report build time and image size.
#  4. Against this machine's PostgreSQL (127.0.0.1:5432, a database of its own, dropped at the
#     end; --network host): `digest demo`, then the same sample through the store (import,
#     subscribers sync, run), then `digest serve`, and from outside the container: /healthz
#     200, a subscriber's feed 200 with an ETag, the same request with If-None-Match 304, the
#     image's HEALTHCHECK healthy, and SIGTERM stops it with exit code 0.
#  5. docker/compose.yaml (skip with DOCKER_CHECK_COMPOSE=0): up --build with its own
#     PostgreSQL and mail catcher; the sample delivered by SMTP into the catcher; feed 200/304
#     through the published port; down -v.
# Every container, network and volume it starts is removed at the end, whatever happens. The
# images stay (they are the build cache of the next run).
#
# Environment: DOCKER_CHECK_PORT (18080; the compose phase uses the next two ports),
# DOCKER_CHECK_ADMIN_URL (postgresql://postgres@127.0.0.1:5432/postgres),
# DOCKER_CHECK_DB (digest_docker_check), BASE_IMAGE (skip the base choice),
# DOCKER_CHECK_REBUILD_BASE=1, DOCKER_CHECK_NO_CACHE=1 (build without Docker's cache),
# DOCKER_CHECK_COMPOSE=0.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=paper-digest:check
SLIM=python:3.11-slim
LOCAL_BASE=paper-digest-base:bookworm
PORT=${DOCKER_CHECK_PORT:-18080}
COMPOSE_PORT=$((PORT + 1))
MAIL_PORT=$((PORT + 2))
ADMIN_URL=${DOCKER_CHECK_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
DB=${DOCKER_CHECK_DB:-digest_docker_check}
RUN_COMPOSE=${DOCKER_CHECK_COMPOSE:-1}
base_seconds=
compose_seconds=
NAME=paper-digest-check-$$

started=$(date +%s.%N)
tmp=$(mktemp -d /tmp/paper-digest-check.XXXXXX)
dockerd_pid=
db_created=
containers=()
volumes=()
compose=()
compose_up=

step() { printf '\n== %s  [+%s s]\n' "$*" "$(since "$started")"; }
fail() {
    echo "docker-check: FAIL: $*" >&2
    exit 1
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { [ "$(id -u)" = 0 ] || fail "$1 (run as root, or install and start it yourself)"; }
apt_install() {
    as_root "needs: apt-get install -y $*"
    echo "docker-check: apt-get install -y $*"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "$compose_up" ]; then
        "${compose[@]}" down -v --remove-orphans >"$tmp/compose-down.log" 2>&1 ||
            echo "docker-check: compose down failed (see below)" >&2
    fi
    for c in "${containers[@]}"; do docker rm -f -v "$c" >/dev/null 2>&1; done
    for v in "${volumes[@]}"; do docker volume rm "$v" >/dev/null 2>&1; done
    if [ -n "$db_created" ]; then
        pg_admin "DROP DATABASE IF EXISTS $DB" || echo "docker-check: could not drop $DB" >&2
    fi
    if [ -n "$dockerd_pid" ]; then
        kill -TERM "$dockerd_pid" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$dockerd_pid" 2>/dev/null && echo "docker-check: dockerd $dockerd_pid still running" >&2
    fi
    rm -rf "$tmp"
    if [ "$rc" = 0 ]; then
        echo "docker-check: OK in $(since "$started") s"
    else
        echo "docker-check: failed (exit $rc) after $(since "$started") s" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SQL on the machine's PostgreSQL, with psycopg from the image (no psql needed here).
pg_admin() {
    docker run --rm --network host -e ADMIN_URL="$ADMIN_URL" -e SQL="$1" "$IMAGE" python -c '
import os, psycopg
with psycopg.connect(os.environ["ADMIN_URL"], autocommit=True, connect_timeout=5) as c:
    c.execute(os.environ["SQL"])'
}

# GET URL [ETAG]: sets http_code, http_etag and http_entries (<entry> elements).
http_get() {
    local url=$1 etag=${2:-}
    local args=(-sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --max-time 20)
    [ -n "$etag" ] && args+=(-H "If-None-Match: $etag")
    http_code=$(curl "${args[@]}" "$url") || fail "GET $url: no answer"
    http_etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]:[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\1/p' "$tmp/headers")
    http_entries=$(grep -o '<entry>' "$tmp/body" | wc -l)
}

wait_healthz() { # URL CONTAINER-CHECK-COMMAND...
    local url=$1
    shift
    for _ in $(seq 120); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ] && return 0
        "$@" || return 1
        sleep 0.5
    done
    return 1
}

# A subscriber's feed: 200 with an ETag and entries, then 304 for If-None-Match.
check_feed() { # FEED-URL LABEL
    local url=$1 label=$2 shown etag
    shown=$(printf '%s' "$url" | sed 's|/feeds/\(....\)[^./]*|/feeds/\1…|')
    http_get "$url"
    [ "$http_code" = 200 ] || fail "$label: GET $shown -> $http_code"
    [ -n "$http_etag" ] || fail "$label: GET $shown -> 200 without an ETag"
    [ "$http_entries" -gt 0 ] || fail "$label: the feed has no entries"
    etag=$http_etag
    echo "GET $shown -> 200, ETag $etag, $http_entries entries"
    http_get "$url" "$etag"
    [ "$http_code" = 304 ] || fail "$label: GET $shown with If-None-Match -> $http_code, not 304"
    echo "GET $shown with If-None-Match: $etag -> 304"
}

# `digest subscribers show --json` on stdin -> the Atom feed's URL
atom_url() { python3 -c 'import json, sys; print(json.load(sys.stdin)["feed_urls"]["atom"])'; }

# What runs inside the app's container: the sample through the configured store.
pipeline_script() {
    cat <<'SCRIPT'
set -eu
samples=$(python -c 'from digest.config.resources import sample_dir; print(sample_dir())')
profiles=$(python -c 'from digest.config.resources import subscribers_dir; print(subscribers_dir())')
digest db upgrade
digest import "$samples"/*.txt.gz --json \
    | python -c 'import json, sys; r = json.load(sys.stdin); print("imported", r["new"], "new papers,", r["seen"], "seen before")'
digest subscribers sync "$profiles"
sent=0
queued=""
for email in $(digest subscribers list --status active --json \
    | python -c 'import json, sys; print(*(s["email"] for s in json.load(sys.stdin)))'); do
    digest run --subscriber "$email" --json >/tmp/run.json
    line=$(python -c 'import json
r = json.load(open("/tmp/run.json"))
d = r["digests"][0] if r["digests"] else {"status": "nothing due", "items": 0}
print(d["status"], d["items"])')
    echo "  $email: $line"
    case $line in
        sent*) sent=$((sent + 1)) ;;
        queued*) queued="$queued $email:${line#queued }" ;;
    esac
done
if [ -n "$queued" ]; then  # DIGEST_QUEUE=procrastinate: the worker service sends them
    echo "waiting for the worker to send the queued digests"
    i=0
    while digest status --json | python -c 'import json, sys
d = json.load(sys.stdin)["digests"]
sys.exit(0 if d.get("pending", 0) + d.get("sending", 0) else 1)'; do
        i=$((i + 1))
        [ "$i" -le 120 ] || { echo "the worker sent nothing in 120 s" >&2; exit 1; }
        sleep 1
    done
    digest status --json | python -c 'import json, sys
sys.exit(1 if json.load(sys.stdin)["digests"].get("failed") else 0)' ||
        { echo "the worker failed to send some digests (digest status)" >&2; exit 1; }
    for entry in $queued; do
        echo "  ${entry%%:*}: sent ${entry#*:} (by the worker)"
        sent=$((sent + 1))
    done
fi
[ "$sent" -gt 0 ] || { echo "no digest was sent" >&2; exit 1; }
SCRIPT
}

# --- 1. Docker -----------------------------------------------------------------------------
step "Docker"
command -v curl >/dev/null || fail "curl is needed"
command -v python3 >/dev/null || fail "python3 is needed"
for p in "$PORT" "$COMPOSE_PORT" "$MAIL_PORT"; do
    port_free "$p" || fail "port $p is taken: set DOCKER_CHECK_PORT (uses it and the next two)"
done
if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null || apt_install docker.io
    as_root "no Docker daemon answers; starting dockerd"
    [ -S /var/run/docker.sock ] && ! docker info >/dev/null 2>&1 && rm -f /var/run/docker.sock
    dockerd >"$tmp/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -n 20 "$tmp/dockerd.log" >&2; fail "dockerd did not start"; }
    echo "started dockerd (pid $dockerd_pid) for this check"
fi
docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}'

# --- 2. Base image -------------------------------------------------------------------------
step "Base image"
base=${BASE_IMAGE:-}
if [ -z "$base" ]; then
    if docker image inspect "$SLIM" >/dev/null 2>&1 || docker pull -q "$SLIM" >/dev/null 2>&1; then
        base=$SLIM
    else
        echo "$SLIM cannot be pulled: using $LOCAL_BASE"
        base=$LOCAL_BASE
        if [ "${DOCKER_CHECK_REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "$base" >/dev/null 2>&1; then
            command -v debootstrap >/dev/null || apt_install debootstrap
            t=$(date +%s.%N)
            docker/base.sh "$base"
            base_seconds=$(since "$t")
            echo "base image built in $base_seconds s"
        fi
    fi
fi
docker image inspect "$base" >/dev/null 2>&1 || docker pull -q "$base" >/dev/null ||
    fail "base image $base is neither here nor pullable"
echo "base: $base"

# --- 3. Build ------------------------------------------------------------------------------
step "Build $IMAGE"
build_args=(--build-arg "BASE_IMAGE=$base" -f docker/Dockerfile -t "$IMAGE")
[ "${DOCKER_CHECK_NO_CACHE:-0}" = 1 ] && build_args+=(--no-cache)
t=$(date +%s.%N)
DOCKER_BUILDKIT=0 docker build "${build_args[@]}" . >"$tmp/build.log" 2>&1 ||
    { tail -n 40 "$tmp/build.log" >&2; fail "docker build"; }
build_seconds=$(since "$t")
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "built in $build_seconds s; image size $((size / 1000000)) MB ($size bytes)"

# --- 4. Against the machine's PostgreSQL ---------------------------------------------------
step "PostgreSQL at ${ADMIN_URL#*@}: database $DB"
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || fail "DOCKER_CHECK_DB must be a plain identifier"
pg_admin "SELECT 1" || fail "PostgreSQL does not answer at $ADMIN_URL (DOCKER_CHECK_ADMIN_URL)"
pg_admin "DROP DATABASE IF EXISTS $DB"
db_created=1
pg_admin "CREATE DATABASE $DB"
db_url="postgresql+psycopg://${ADMIN_URL#postgresql://}"
db_url="${db_url%/*}/$DB"
volumes+=("$NAME-data")
docker volume create "$NAME-data" >/dev/null
app_env=(-e "DIGEST_DATABASE_URL=$db_url" -e "DIGEST_BASE_URL=http://127.0.0.1:$PORT"
    -e DIGEST_WEB_HOST=127.0.0.1 -e "DIGEST_WEB_PORT=$PORT" -e DIGEST_LOG_JSON=false
    -e DIGEST_SCHEDULER_FETCH_CRON=off -e COLUMNS=110)

step "digest demo (inside the container)"
containers+=("$NAME-demo")
docker run --rm --name "$NAME-demo" --network host -v "$NAME-data:/data" "${app_env[@]}" \
    "$IMAGE" digest demo --dir /data/demo || fail "digest demo"

step "The sample through PostgreSQL: import, subscribers sync, run"
containers+=("$NAME-pipeline")
pipeline_script | docker run --rm -i --name "$NAME-pipeline" --network host -v "$NAME-data:/data" \
    "${app_env[@]}" "$IMAGE" sh -s | tee "$tmp/pipeline.log" || fail "pipeline against PostgreSQL"
subscriber=$(sed -n 's/^  \([^ ]*\): sent .*/\1/p' "$tmp/pipeline.log" | head -n 1)

step "digest serve on 127.0.0.1:$PORT (--network host)"
containers+=("$NAME-serve")
docker run -d --name "$NAME-serve" --network host -v "$NAME-data:/data" "${app_env[@]}" \
    --health-interval 2s --health-start-period 0s "$IMAGE" >/dev/null
serve_running() { [ "$(docker inspect -f '{{.State.Running}}' "$NAME-serve")" = true ]; }
wait_healthz "http://127.0.0.1:$PORT/healthz" serve_running ||
    { docker logs --tail 40 "$NAME-serve" >&2; fail "digest serve: /healthz never answered 200"; }
echo "GET /healthz -> 200"
feed=$(docker exec "$NAME-serve" digest subscribers show "$subscriber" --json | atom_url)
echo "feed of $subscriber:"
check_feed "$feed" "serve"
for _ in $(seq 30); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$NAME-serve")
    [ "$health" = healthy ] && break
    sleep 1
done
[ "$health" = healthy ] || fail "the image's HEALTHCHECK says $health"
echo "HEALTHCHECK: healthy"
echo "the app's log:"
docker logs "$NAME-serve" 2>&1 | grep -E 'GET /feeds/' | tail -n 2 | sed 's/^/  /'
docker logs "$NAME-serve" 2>&1 | grep -q 'GET /feeds/.* 304 ' || fail "no 304 in the app's log"
docker stop -t 20 "$NAME-serve" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME-serve")
[ "$code" = 0 ] || fail "digest serve exited $code on SIGTERM"
echo "SIGTERM: digest serve stopped, exit code 0"

# --- 5. Compose ----------------------------------------------------------------------------
if [ "$RUN_COMPOSE" = 1 ]; then
    step "docker/compose.yaml: app, PostgreSQL, mail catcher"
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    else
        command -v docker-compose >/dev/null || apt_install docker-compose
        compose=(docker-compose)
    fi
    # The compose file reads only variables that .env.example documents.
    missing=$({
        # shellcheck disable=SC2016 # a literal ${ is what is searched for
        grep -v '^[[:space:]]*#' docker/compose.yaml | grep -o '\${[A-Z_]*' | cut -c3-
        sed -n 's/^  \(DIGEST_[A-Z_]*\):$/\1/p' docker/compose.yaml
    } | sort -u | while read -r v; do grep -q "^# *$v=" .env.example || echo "$v"; done)
    [ -z "$missing" ] || fail ".env.example lacks: $missing"
    cat >"$tmp/check.env" <<ENV
BASE_IMAGE=$base
DIGEST_PORT=$COMPOSE_PORT
MAIL_UI_PORT=$MAIL_PORT
DIGEST_BASE_URL=http://127.0.0.1:$COMPOSE_PORT
DIGEST_LOG_JSON=false
DIGEST_SCHEDULER_FETCH_CRON=off
ENV
    compose+=(--env-file "$tmp/check.env" -f docker/compose.yaml -p "$NAME")
    echo "${compose[*]} up -d --build"
    t=$(date +%s.%N)
    compose_up=1
    "${compose[@]}" up -d --build >"$tmp/compose-up.log" 2>&1 ||
        { tail -n 40 "$tmp/compose-up.log" >&2; fail "compose up"; }
    app_running() { [ -n "$("${compose[@]}" ps -q app 2>/dev/null)" ]; }
    wait_healthz "http://127.0.0.1:$COMPOSE_PORT/healthz" app_running ||
        { "${compose[@]}" logs --tail 40 >&2; fail "compose: /healthz never answered 200"; }
    compose_seconds=$(since "$t")
    echo "up (built and started) in $compose_seconds s; GET /healthz -> 200"
    sources=$("${compose[@]}" exec -T app digest sources list --json | python3 -c '
import json, sys
print(", ".join(s["name"] + " (" + s["kind"] + ")" for s in json.load(sys.stdin)))')
    [[ $sources == *"(hf_daily)"* ]] || fail "compose: no hf_daily source by default ($sources)"
    echo "sources: $sources (fetching off for the check)"
    pipeline_script | "${compose[@]}" exec -T app sh -s | tee "$tmp/pipeline.log" ||
        fail "compose: pipeline"
    sent=$(grep -c '^  [^ ]*: sent ' "$tmp/pipeline.log")
    subscriber=$(sed -n 's/^  \([^ ]*\): sent .*/\1/p' "$tmp/pipeline.log" | head -n 1)
    caught=$(curl -sS --max-time 10 "http://127.0.0.1:$MAIL_PORT/api/messages" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
    [ "$caught" -ge "$sent" ] || fail "compose: $sent digests sent, $caught caught by the mail catcher"
    echo "mail catcher (http://127.0.0.1:$MAIL_PORT): $caught messages caught"
    feed=$("${compose[@]}" exec -T app digest subscribers show "$subscriber" --json | atom_url)
    echo "feed of $subscriber:"
    check_feed "$feed" "compose"
    "${compose[@]}" down -v --remove-orphans >"$tmp/compose-down.log" 2>&1 ||
        { cat "$tmp/compose-down.log" >&2; fail "compose down"; }
    compose_up=
    echo "compose down -v: containers, network and volumes removed"
fi

step "Summary"
echo "base image:  $base${base_seconds:+ (built in $base_seconds s)}"
echo "app image:   $IMAGE, $((size / 1000000)) MB, built in $build_seconds s"
if [ -n "$compose_seconds" ]; then echo "compose:     up --build in $compose_seconds s"; fi

# Shared helpers of deploy/backup/{backup,restore,list,verify}. Sourced, not run.
# shellcheck shell=bash

BACKUP_DIR="${BACKUP_DIR:-/var/backups/hosting}"

blog() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${BACKUP_PROG:-backup}" "$*" >&2; }
bdie() { blog "error: $*"; exit 1; }

# A backup id is its UTC start time: 20250102T030405Z (sortable, and its age is in its name).
id_epoch() { # id -> seconds since the epoch
    local id=$1
    [[ "$id" =~ ^([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z$ ]] || return 1
    date -u -d "${BASH_REMATCH[1]}-${BASH_REMATCH[2]}-${BASH_REMATCH[3]} ${BASH_REMATCH[4]}:${BASH_REMATCH[5]}:${BASH_REMATCH[6]}" +%s
}

# Complete backups (a manifest.json exists; in-progress ones are <id>.partial), oldest first.
list_ids() {
    [ -d "$BACKUP_DIR" ] || return 0
    local d
    for d in "$BACKUP_DIR"/*/; do
        d=${d%/}; d=${d##*/}
        # `if`, not `&&`: a last entry that is no backup (the s3-objects mirror) must not fail the loop.
        if [ -f "$BACKUP_DIR/$d/manifest.json" ] && id_epoch "$d" >/dev/null 2>&1; then echo "$d"; fi
    done | sort
}

# DATABASE_PASSWORD_FILE (Docker / Kubernetes secret) fills the password into a URL without one,
# exactly like the app does.
database_url() {
    local url=${1:-${DATABASE_URL:-}}
    if [ -n "$url" ] && [ -n "${DATABASE_PASSWORD_FILE:-}" ] && [ -r "$DATABASE_PASSWORD_FILE" ]; then
        local pw; pw=$(tr -d '\n' <"$DATABASE_PASSWORD_FILE")
        # postgres://user@host... -> postgres://user:pw@host...
        if [[ "$url" =~ ^(postgres(ql)?://)([^:@/]+)@(.*)$ ]]; then
            url="${BASH_REMATCH[1]}${BASH_REMATCH[3]}:${pw}@${BASH_REMATCH[4]}"
        fi
    fi
    printf '%s' "$url"
}

redact() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#'; }

# Check the SHA256SUMS of one backup folder. Prints nothing on success.
verify_sums() { # dir
    (cd "$1" && sha256sum --quiet --strict -c SHA256SUMS)
}

# ---- the S3 blob store (HOSTING_BLOB_STORE=s3) ------------------------------------------------
# The bucket's objects are the site files, each named <prefix>/<sha256 of its bytes> and never
# rewritten with other bytes. A backup copies the objects the mirror folder lacks into
# $BACKUP_DIR/s3-objects/<sha256> (one copy of each, shared by every backup) and lists its own
# set in <id>/s3-objects.txt ("<sha256> <bytes>" lines, sorted): restoring backup N puts exactly
# N's set back. rclone reaches the bucket through RCLONE_CONFIG_HOSTINGS3_* environment variables
# made from the app's own HOSTING_S3_* settings: no rclone.conf, no secret written to disk.
# shellcheck disable=SC2034 # used by the scripts that source this file
S3_MIRROR="$BACKUP_DIR/s3-objects" S3_LIST=s3-objects.txt
# shellcheck disable=SC2034
S3_TRANSFERS="${BACKUP_S3_TRANSFERS:-16}" # parallel transfers: one request to Garage takes ~45 ms

# NAME -> the value of NAME, else the text of the file NAME_FILE names (trimmed, as the app does).
s3_setting() {
    local name=$1 file_var="${1}_FILE" v
    v=${!name:-}
    if [ -z "$v" ] && [ -n "${!file_var:-}" ]; then
        [ -r "${!file_var}" ] || bdie "$file_var (${!file_var}) is not readable"
        v=$(tr -d ' \t\r\n' <"${!file_var}")
    fi
    printf '%s' "$v"
}

# Sets S3_REMOTE (hostings3:<bucket>/<prefix>) and exports the rclone remote; dies naming what is missing.
s3_configure() {
    local id secret prefix
    command -v rclone >/dev/null || bdie "the S3 blob store is copied with rclone: apt-get install rclone"
    id=$(s3_setting HOSTING_S3_ACCESS_KEY_ID)
    secret=$(s3_setting HOSTING_S3_SECRET_ACCESS_KEY)
    if [ -z "${HOSTING_S3_ENDPOINT:-}" ] || [ -z "${HOSTING_S3_BUCKET:-}" ] || [ -z "$id" ] || [ -z "$secret" ]; then
        bdie "HOSTING_BLOB_STORE=s3 needs HOSTING_S3_ENDPOINT, HOSTING_S3_BUCKET, HOSTING_S3_ACCESS_KEY_ID and HOSTING_S3_SECRET_ACCESS_KEY (or their _FILE variants), as the app does"
    fi
    export RCLONE_CONFIG_HOSTINGS3_TYPE=s3 RCLONE_CONFIG_HOSTINGS3_PROVIDER=Other \
        RCLONE_CONFIG_HOSTINGS3_ENV_AUTH=false RCLONE_CONFIG_HOSTINGS3_FORCE_PATH_STYLE=true \
        RCLONE_CONFIG_HOSTINGS3_NO_CHECK_BUCKET=true \
        RCLONE_CONFIG_HOSTINGS3_ENDPOINT="$HOSTING_S3_ENDPOINT" \
        RCLONE_CONFIG_HOSTINGS3_REGION="${HOSTING_S3_REGION:-garage}" \
        RCLONE_CONFIG_HOSTINGS3_ACCESS_KEY_ID="$id" \
        RCLONE_CONFIG_HOSTINGS3_SECRET_ACCESS_KEY="$secret"
    prefix=${HOSTING_S3_PREFIX-blobs}
    while [ "${prefix#/}" != "$prefix" ]; do prefix=${prefix#/}; done
    while [ "${prefix%/}" != "$prefix" ]; do prefix=${prefix%/}; done
    S3_BUCKET_REMOTE="hostings3:$HOSTING_S3_BUCKET"
    S3_REMOTE="$S3_BUCKET_REMOTE${prefix:+/$prefix}"
    # shellcheck disable=SC2034
    S3_WHERE="s3://$HOSTING_S3_BUCKET${prefix:+/$prefix} at $HOSTING_S3_ENDPOINT"
}

# rclone, quiet unless something fails; the secrets stay in its environment. Its S3 backend refuses
# to start when AWS_CA_BUNDLE is set (the AWS SDK cannot load it into rclone's HTTP transport):
# such a bundle is handed to rclone's own --ca-cert instead.
s3_rclone() {
    local ca=()
    [ -z "${AWS_CA_BUNDLE:-}" ] || [ ! -r "$AWS_CA_BUNDLE" ] || ca=(--ca-cert "$AWS_CA_BUNDLE")
    env -u AWS_CA_BUNDLE rclone --config /dev/null --retries 3 --low-level-retries 10 -q "${ca[@]}" "$@"
}

# The blobs under the prefix: "<sha256> <bytes>" lines, sorted (other keys are not site files).
s3_list_bucket() {
    local out
    out=$(s3_rclone lsf --files-only --format ps --separator ' ' "$S3_REMOTE") || return 1
    grep -E '^[0-9a-f]{64} [0-9]+$' <<<"$out" | LC_ALL=C sort || true
}

# The mirror's objects, one name a line, sorted.
s3_mirror_keys() {
    [ -d "$S3_MIRROR" ] || return 0
    find "$S3_MIRROR" -maxdepth 1 -type f -printf '%f\n' | grep -E '^[0-9a-f]{64}$' | LC_ALL=C sort || true
}

# Re-hash objects (names on stdin) in the folder given (the mirror, or where a copy arrived):
# prints the bad ones ("<sha256>: FAILED ..."), fails when any is.
s3_hash_check() {
    local dir=$1 lines
    lines=$(awk 'NF { print $1 "  " $1 }')
    [ -n "$lines" ] || return 0
    [ -d "$dir" ] || { awk '{ print $1 ": FAILED open or read (no folder '"$dir"')" }' <<<"$lines"; return 1; }
    (cd "$dir" && sha256sum --quiet --strict -c - 2>&1 <<<"$lines" | grep -v '^sha256sum: ')
}

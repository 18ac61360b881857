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
        [ -f "$BACKUP_DIR/$d/manifest.json" ] && id_epoch "$d" >/dev/null 2>&1 && echo "$d"
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

#!/usr/bin/env bash
# Installs Libellule as a systemd service:
#   binary     /usr/local/bin/libellule
#   flags      /etc/libellule/libellule.flags (kept if it already exists)
#   unit       /etc/systemd/system/libellule.service
#   user       libellule (system user, no login)
#   state      /var/lib/libellule (created by systemd's StateDirectory=)
#
# Usage: scripts/install.sh [--uninstall] [--no-build] [--enable] [--purge]
#   --no-build   install target/release/libellule as it is
#   --enable     also `systemctl enable --now libellule`
#   --uninstall  stop and remove the unit, binary and user; keeps
#                /etc/libellule and /var/lib/libellule unless --purge
# Environment: PREFIX (/usr/local), DESTDIR (staging root, skips systemctl
# and useradd).
set -euo pipefail

cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN_DIR="$DESTDIR$PREFIX/bin"
ETC_DIR="$DESTDIR/etc/libellule"
UNIT_DIR="$DESTDIR/etc/systemd/system"
STATE_DIR="$DESTDIR/var/lib/libellule"
SERVICE_USER=libellule

mode=install
build=1
enable=0
purge=0
for arg in "$@"; do
    case "$arg" in
        --uninstall) mode=uninstall ;;
        --no-build) build=0 ;;
        --enable) enable=1 ;;
        --purge) purge=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[install] %s\n' "$*"; }

have_systemd() { [ -z "$DESTDIR" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; }

as_root() {
    if [ -n "$DESTDIR" ] || [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "$mode" = uninstall ]; then
    if have_systemd; then
        as_root systemctl disable --now libellule.service 2>/dev/null || true
    fi
    as_root rm -f "$UNIT_DIR/libellule.service" "$BIN_DIR/libellule"
    if have_systemd; then as_root systemctl daemon-reload; fi
    if [ -z "$DESTDIR" ] && id "$SERVICE_USER" >/dev/null 2>&1; then
        as_root userdel "$SERVICE_USER" || true
    fi
    if [ "$purge" = 1 ]; then
        as_root rm -rf "$ETC_DIR" "$STATE_DIR"
        log "removed $ETC_DIR and $STATE_DIR"
    else
        log "kept $ETC_DIR and $STATE_DIR (use --purge to remove them)"
    fi
    log "uninstalled"
    exit 0
fi

if [ "$build" = 1 ]; then
    log "building release binary"
    if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ]; then
        sudo -u "$SUDO_USER" cargo build --release
    else
        cargo build --release
    fi
fi
[ -x target/release/libellule ] || { echo "target/release/libellule not found" >&2; exit 1; }

log "installing binary to $BIN_DIR"
as_root install -d -m 0755 "$BIN_DIR"
as_root install -m 0755 target/release/libellule "$BIN_DIR/libellule"

if [ -z "$DESTDIR" ] && ! id "$SERVICE_USER" >/dev/null 2>&1; then
    log "creating system user $SERVICE_USER"
    as_root useradd --system --no-create-home --home-dir /var/lib/libellule \
        --shell /usr/sbin/nologin --user-group "$SERVICE_USER"
fi

as_root install -d -m 0755 "$ETC_DIR"
if [ -e "$ETC_DIR/libellule.flags" ]; then
    log "keeping existing $ETC_DIR/libellule.flags (new defaults in libellule.flags.dist)"
    as_root install -m 0644 systemd/libellule.flags "$ETC_DIR/libellule.flags.dist"
else
    log "installing $ETC_DIR/libellule.flags"
    as_root install -m 0644 systemd/libellule.flags "$ETC_DIR/libellule.flags"
fi

log "installing unit to $UNIT_DIR"
as_root install -d -m 0755 "$UNIT_DIR"
as_root install -m 0644 systemd/libellule.service "$UNIT_DIR/libellule.service"

if have_systemd; then
    as_root systemctl daemon-reload
    if [ "$enable" = 1 ]; then
        as_root systemctl enable --now libellule.service
        log "started: systemctl status libellule"
    else
        log "start with: systemctl enable --now libellule"
    fi
else
    log "systemd is not running here: unit installed but not loaded"
fi

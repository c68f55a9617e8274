#!/bin/sh
# Install or upgrade the hashfleet node from a signed release archive.
#
#   install-node.sh --archive hashfleet-node-1.4.2-linux-amd64.tar.gz --pub release.pub [--version 1.4.2]
#                   [--verifier /path/to/trusted/hashfleet]
#
# The archive (a tar.gz holding the hashfleet binary at its top level) must come with ARCHIVE.sig, made by
# `hashfleet release sign`. Nothing is installed unless the signature verifies against the trusted public key
# (--pub, or the one installed by a previous run in /etc/hashfleet/release.pub): an unsigned, wrongly signed,
# tampered or wrong-version archive is refused with the verifier's reason.
#
# DESTDIR=/some/dir stages the install under that directory instead (no root needed; no user is created and
# systemd is not touched): packaging and tests use it.
#
# Verification never trusts the candidate: it runs the installed hashfleet on an upgrade, else --verifier (a
# hashfleet binary obtained out of band, e.g. the one the release was signed with), else a hashfleet on PATH;
# with none of them the install is refused. The archive and its signature are copied into a private
# directory first, and what is verified is exactly what is unpacked.
set -eu

PREFIX=${PREFIX:-/usr/local}
ROOT=${DESTDIR:-}
BIN="$ROOT$PREFIX/bin/hashfleet"
ETC=$ROOT/etc/hashfleet
DATA=$ROOT/var/lib/hashfleet/node
UNIT_SRC=$(dirname "$0")/systemd/hashfleet-node.service
UNIT_DST=$ROOT/etc/systemd/system/hashfleet-node.service

archive= pub= version= verifier=
while [ $# -gt 0 ]; do
	case "$1" in
	--archive) archive=$2; shift 2 ;;
	--pub) pub=$2; shift 2 ;;
	--version) version=$2; shift 2 ;;
	--verifier) verifier=$2; shift 2 ;;
	-h|--help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "install-node: unknown argument $1" >&2; exit 2 ;;
	esac
done

die() { echo "install-node: $*" >&2; exit 1; }

[ -n "$archive" ] || die "--archive is required"
[ -f "$archive" ] || die "no archive at $archive"
[ -f "$archive.sig" ] || die "REFUSED: $archive has no signature ($archive.sig); refusing an unsigned build"
if [ -z "$pub" ]; then
	pub=$ETC/release.pub
	[ -f "$pub" ] || die "--pub is required on a first install (the trusted release public key)"
fi
[ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || die "run as root (or stage with DESTDIR=...)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# Copy first: the files verified are the files unpacked, whatever happens to the originals meanwhile.
cp "$archive" "$work/archive.tar.gz"
cp "$archive.sig" "$work/archive.tar.gz.sig"

if [ -x "$BIN" ]; then
	verifier=$BIN
elif [ -z "$verifier" ]; then
	verifier=$(command -v hashfleet || true)
fi
[ -n "$verifier" ] && [ -x "$verifier" ] ||
	die "REFUSED: no trusted verifier (first install): pass --verifier PATH to a hashfleet binary you trust"

set -- release verify --pub "$pub" --artifact "$work/archive.tar.gz"
[ -n "$version" ] && set -- "$@" --version "$version"
if ! "$verifier" "$@"; then
	die "REFUSED: $archive did not verify against $pub; nothing was installed"
fi
tar -tzf "$work/archive.tar.gz" | grep -qx 'hashfleet' || die "REFUSED: $archive does not hold a top-level hashfleet binary"

# Verified: unpack the verified copy and install.
mkdir "$work/pkg"
tar -xzf "$work/archive.tar.gz" -C "$work/pkg" hashfleet
install -d -m 0755 "$ETC" "$(dirname "$BIN")"
if [ -z "$ROOT" ]; then
	id hashfleet >/dev/null 2>&1 || useradd --system --home-dir /var/lib/hashfleet --shell /usr/sbin/nologin hashfleet
	install -d -m 0700 -o hashfleet -g hashfleet /var/lib/hashfleet "$DATA"
else
	install -d -m 0700 "$ROOT/var/lib/hashfleet" "$DATA"
fi
[ "$pub" = "$ETC/release.pub" ] || install -m 0644 "$pub" "$ETC/release.pub"
install -m 0755 "$work/pkg/hashfleet" "$BIN.new"
mv -f "$BIN.new" "$BIN"
if [ -f "$UNIT_SRC" ]; then
	install -d -m 0755 "$(dirname "$UNIT_DST")"
	install -m 0644 "$UNIT_SRC" "$UNIT_DST"
	if [ -z "$ROOT" ]; then
		systemctl daemon-reload
		if systemctl is-active --quiet hashfleet-node; then
			systemctl restart hashfleet-node
		fi
	fi
fi
echo "install-node: installed $archive (verified by $verifier) as $BIN"
echo "install-node: enroll with 'hashfleet node enroll' (once), then: systemctl enable --now hashfleet-node"

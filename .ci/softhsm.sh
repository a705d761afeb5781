#!/usr/bin/env bash
# softhsm.sh installs SoftHSM2 if it is missing, creates a fresh token in a
# temporary directory and prints the export lines the PKCS#11 tests read:
#
#   eval "$(bash .ci/softhsm.sh)"
#   go test -race ./kms/pkcs11kms/
#
# Progress goes to stderr; only export lines go to stdout. The PINs are
# generated at random on each run and belong to a throw-away token.
set -euo pipefail

if ! command -v softhsm2-util >/dev/null 2>&1; then
	echo "softhsm.sh: installing softhsm2" >&2
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq softhsm2 >&2
fi

module=""
for m in /usr/lib/softhsm/libsofthsm2.so \
	/usr/lib/*-linux-gnu/softhsm/libsofthsm2.so \
	/usr/local/lib/softhsm/libsofthsm2.so \
	/opt/homebrew/lib/softhsm/libsofthsm2.so; do
	if [ -f "$m" ]; then module="$m"; break; fi
done
if [ -z "$module" ]; then
	echo "softhsm.sh: libsofthsm2.so not found after installation" >&2
	exit 1
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/domicile-softhsm.XXXXXX")"
mkdir -p "$dir/tokens"
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF

label="domicile-test"
pin="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
so_pin="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free \
	--label "$label" --pin "$pin" --so-pin "$so_pin" >&2

echo "export SOFTHSM2_CONF='$dir/softhsm2.conf'"
echo "export DOMICILE_TEST_PKCS11_MODULE='$module'"
echo "export DOMICILE_TEST_PKCS11_TOKEN='$label'"
echo "export DOMICILE_TEST_PKCS11_PIN='$pin'"

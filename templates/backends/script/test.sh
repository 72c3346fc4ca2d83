#!/bin/sh
# Checks that ostree-build-{{name}} speaks ostree-build's protocol, run the way ostree-build
# runs it: the info probe, then a plan and a run into an empty root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exe="$here/ostree-build-{{name}}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }

"$exe" ostree-build-plugin-info | grep -q '"name": "{{name}}"' || fail "the info does not name {{name}}"
request='{"protocol": 1, "component": "test", "arch": "x86_64", "project_dir": "'"$dir"'", "root": "'"$dir"'", "options": {"greeting": "hi"}}'
echo "$request" | "$exe" ostree-build-plugin-plan | tail -n 1 | grep -q '"type": "plan"' || fail "no plan"
echo "$request" | "$exe" ostree-build-plugin-run | tail -n 1 | grep -q '"type": "output"' || fail "no output"
[ "$(cat "$dir/usr/share/{{name}}/greeting")" = hi ] || fail "the greeting was not written"
echo "ok: ostree-build-{{name}} answers the info probe, plans and fills an empty root"

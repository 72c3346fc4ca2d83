#!/usr/bin/env bash
# The demo, end to end: install what is needed, build ostree-build, make a scratch project
# of the demo distro (`ostree-build new` from the template folder templates/demo), build
# and publish it signed with a throwaway GPG key, show the result, serve it over HTTP
# (`ostree-build serve`) to a client that verifies commits and summary, deploy it into a
# test sysroot with `ostree admin deploy` the way a device would, then release a change:
# log, diff, promote to a stable ref, and see what retention would prune.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p ostree-build
bin="$PWD/target/release/ostree-build"
demo="${DEMO_DIR:-$PWD/target/demo}"
# A previous run's deployment is immutable (ostree sets the flag); lift it so it can go.
if [ -e "$demo" ]; then chattr -R -i "$demo" 2>/dev/null || true; fi
rm -rf "$demo" && "$bin" new "$demo" --template ./templates/demo --os-name exampleos
cd "$demo"
python3 make-tarball.py >/dev/null
echo "== a throwaway signing key (keys/), named in [publish] gpg-sign"
mkdir -m 700 keys
gpg() { command gpg --homedir "$demo/keys" --batch "$@"; }
cleanup() { kill "${server:-}" 2>/dev/null || true; gpgconf --homedir "$demo/keys" --kill all 2>/dev/null || true; }
trap cleanup EXIT
gpg --passphrase '' --quick-gen-key "exampleos demo <demo@example.org>" ed25519 sign 1y 2>/dev/null
fpr=$(gpg --with-colons --list-keys 2>/dev/null | awk -F: '/^fpr:/ {print $10; exit}')
sed -i "s/^\[publish\]$/[publish]\ngpg-sign = [\"$fpr\"]\ngpg-homedir = \"keys\"/" ostree-build.toml
echo "== ostree-build build (cold)"
"$bin" build
echo "== ostree-build build (again: nothing to do)"
"$bin" build
echo "== ostree-build status"
"$bin" status
echo "== the published image"
ostree --repo=build/repo log exampleos/x86_64/standard | head -8
ostree --repo=build/repo ls -R exampleos/x86_64/standard
echo "== ostree-build serve: the export repository over HTTP; a verifying client pulls it"
"$bin" serve --port 0 > serve.log &
server=$!
for _ in $(seq 50); do grep -q '^serving' serve.log 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*/' serve.log | head -1)
rm -rf client && ostree --repo=client init --mode=archive
ostree --repo=client remote add --set=gpg-verify=true --set=gpg-verify-summary=true \
    --gpg-import=build/repo/exampleos.gpg demo "$url"
ostree --repo=client pull demo exampleos/x86_64/standard
ostree --repo=client checkout exampleos/x86_64/standard client-tree >/dev/null 2>&1 || ostree --repo=client checkout -U exampleos/x86_64/standard client-tree
./client-tree/usr/bin/hello
echo "== a device deploys it (ostree admin init-fs, os-init, deploy into ./sysroot)"
rm -rf sysroot && mkdir sysroot
ostree admin init-fs sysroot >/dev/null
ostree admin os-init --sysroot=sysroot exampleos
ostree --repo=sysroot/ostree/repo remote add --set=gpg-verify=true \
    --gpg-import=build/repo/exampleos.gpg exampleos "$url"
ostree --repo=sysroot/ostree/repo pull exampleos exampleos/x86_64/standard
ostree admin deploy --sysroot=sysroot --os=exampleos exampleos:exampleos/x86_64/standard
ostree admin status --sysroot=sysroot
deployment=$(ls -d sysroot/ostree/deploy/exampleos/deploy/*.0)
echo "deployed /etc/hostname: $(cat "$deployment/etc/hostname")"
cat sysroot/boot/loader/entries/*.conf
echo "== a release: change a file, build (signed, with a delta), log, diff, promote"
echo "welcome to exampleos 1.0.1" > rootfs/etc/motd
"$bin" build
"$bin" log standard
"$bin" diff standard
"$bin" promote standard --to exampleos/x86_64/stable
ostree --repo=client pull demo exampleos/x86_64/standard
ostree --repo=client show demo:exampleos/x86_64/standard | head -3
echo "== what retention would remove with keep = 1 (nothing is removed)"
"$bin" prune --keep 1 --dry-run
echo "demo done: project in $demo, export repository in $demo/build/repo"

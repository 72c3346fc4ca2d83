#!/usr/bin/env bash
# The demo, end to end: install what is needed, build ostree-build, make a scratch project
# of the demo distro (`ostree-build new` from the template folder templates/demo), build
# and publish it, show the result, then pull it over HTTP into a client repository, and
# deploy it into a test sysroot with `ostree admin deploy` the way a device would.
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
echo "== ostree-build build (cold)"
"$bin" build
echo "== ostree-build build (again: nothing to do)"
"$bin" build
echo "== ostree-build status"
"$bin" status
echo "== the published image"
ostree --repo=build/repo log exampleos/x86_64/standard | head -8
ostree --repo=build/repo ls -R exampleos/x86_64/standard
echo "== a client pulls it over HTTP"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory build/repo >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 0.5
rm -rf client && ostree --repo=client init --mode=archive
ostree --repo=client remote add --no-gpg-verify demo "http://127.0.0.1:$port"
ostree --repo=client pull demo exampleos/x86_64/standard
ostree --repo=client checkout exampleos/x86_64/standard client-tree >/dev/null 2>&1 || ostree --repo=client checkout -U exampleos/x86_64/standard client-tree
./client-tree/usr/bin/hello
echo "== a device deploys it (ostree admin init-fs, os-init, deploy into ./sysroot)"
rm -rf sysroot && mkdir sysroot
ostree admin init-fs sysroot >/dev/null
ostree admin os-init --sysroot=sysroot exampleos
ostree --repo=sysroot/ostree/repo remote add --no-gpg-verify exampleos "http://127.0.0.1:$port"
ostree --repo=sysroot/ostree/repo pull exampleos exampleos/x86_64/standard
ostree admin deploy --sysroot=sysroot --os=exampleos exampleos:exampleos/x86_64/standard
ostree admin status --sysroot=sysroot
deployment=$(ls -d sysroot/ostree/deploy/exampleos/deploy/*.0)
echo "deployed /etc/hostname: $(cat "$deployment/etc/hostname")"
cat sysroot/boot/loader/entries/*.conf
echo "demo done: project in $demo, export repository in $demo/build/repo"

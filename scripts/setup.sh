#!/usr/bin/env bash
# Install the system packages ostree-build needs to build and test (Debian/Ubuntu, as root
# or through sudo). Safe to run again.
set -euo pipefail
# debootstrap, mmdebstrap, dnf, rpm (rpmbuild) and createrepo-c: the package backends and
# the local RPM repository their tests build; kmod and systemd: the depmod and
# systemd-presets triggers (and systemd-tmpfiles in tests); curl: HTTP checks;
# qemu-system-x86 and e2fsprogs: `ostree-build boot` (a disk from mkfs.ext4 -d, booted in QEMU);
# busybox-static: the shell and tools of the image the `sandbox = "image"` trigger tests build;
# gnupg: signed publishing (`[publish] gpg-sign`) and the throwaway keys of its tests and of log's.
# jq: the CI examples in templates/ci/ and the test that runs their filters (ci_templates.rs);
# rsync, openssh-client: `cache push ssh://...`; openssh-server: its test's throwaway sshd.
packages=(libostree-dev ostree fuse3 bubblewrap pkg-config python3 time attr gzip bzip2 xz-utils zstd
  debootstrap mmdebstrap uidmap dnf rpm createrepo-c kmod systemd curl qemu-system-x86 e2fsprogs
  busybox-static gnupg jq rsync openssh-client openssh-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (rustup) first" >&2; exit 1; }

#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (only those missing) and makes sure the
# default guest image exists. Idempotent; safe to run before every `npm test`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  gcc-riscv64-linux-gnu      # guest test programs
  libc6-dev-riscv64-cross    # static guest programs of bench/ (a Recommends of the compiler only)
  binutils-riscv64-linux-gnu
  device-tree-compiler       # dtc, checks the board's device tree
  cpio                       # lists the initramfs in test/image.test.ts
  qemu-system-misc           # qemu-system-riscv64, the peer
  e2fsprogs                  # mkfs.ext4 for disk images
  xz-utils                   # the image builder decompresses .ko.xz modules
  debian-archive-keyring     # the image builder's private apt checks Debian's signatures
  socat                      # vessel run --net tap=NAME relays the TAP through it; vessel vmm --console pty makes the pty
  passt                      # vessel run --net passt (test/net-user.test.ts, bench/net.ts)
  iputils-ping               # test/net-tap.test.ts pings the guests from the host side
  curl                       # test/vmm-*.test.ts drive the VMM API with curl --unix-socket
  chromium                   # test/web-console.test.ts drives it with playwright-core (the web console in a real browser)
)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test/setup.sh: missing Debian packages: ${missing[*]}" >&2
    echo "Run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null; then
    echo "test/setup.sh: missing packages ${missing[*]} and no apt-get on this host (Debian/Ubuntu needed)" >&2
    exit 1
  fi
  echo "test/setup.sh: installing ${missing[*]}" >&2
  # Update the host's package lists once, unless they are already there and recent (< 1 day).
  if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1) ]]; then
    apt-get update -q
  fi
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    # The lists may have been stale after all: refresh and try once more.
    apt-get update -q
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
      echo "test/setup.sh: apt-get could not install ${missing[*]} (see its message above)." >&2
      echo "  Debian's archive must be reachable; chromium is Debian's own package (the browser tests need it at /usr/bin/chromium)." >&2
      exit 1
    fi
  fi
fi

if [[ ! -f dist/images/build-image.js ]]; then
  echo "test/setup.sh: dist/images/build-image.js is missing; run \`npm run build\` first" >&2
  exit 1
fi
node dist/images/build-image.js

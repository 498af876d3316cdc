// The initramfs /init's step that boots from a disk: with `root=` on the kernel command line it
// mounts that device and hands over to the disk's init with switch_root. When that cannot work
// it prints one line saying why and returns, and /init goes on to the initramfs shell (a
// missing or broken root disk must not panic the guest).

/**
 * Shell code for /init, run after the modules are loaded. Honours the kernel's usual root
 * parameters: root=/dev/X | LABEL=x | UUID=x, rootfstype= (default ext4), rootflags=,
 * rootdelay= (seconds to wait for the device, default 5), ro / rw (default ro, as the kernel
 * does) and init= (default /sbin/init). The kernel keeps all of them for itself, so they are
 * read from /proc/cmdline.
 */
export const SWITCH_ROOT_SH = `
# --- root=: boot the disk's init ---------------------------------------------------------
say() { echo "vessel-init: $*"; }

# Why mounting $1 failed, in a few words: a missing superblock, a file system that needs fsck,
# else mount's own error with the kernel's last message about the device.
mount_failure() {
  klog=$(dmesg | grep "(\${1##*/})" | tail -n 1 | sed 's/^\\[[^]]*\\] *//')
  case "$rootfstype" in
    ext2|ext3|ext4)
      magic=$(dd if="$1" bs=2 skip=540 count=1 2>/dev/null | hexdump -e '1/2 "%04x"')
      if [ "$magic" != ef53 ]; then echo "no ext2/3/4 file system on it"; return; fi
      ;;
  esac
  case "$klog" in
    *fsck*|*corrupt*|*recovery*|*noload*) echo "the file system needs fsck (e2fsck -f the image on the host); kernel: $klog" ;;
    *) echo "$2\${klog:+; kernel: $klog}" ;;
  esac
}

boot_root() {
  case "$rootdelay" in ''|*[!0-9]*) rootdelay=5 ;; esac
  dev=$root
  tries=$((rootdelay * 10))
  while :; do
    case "$root" in UUID=*|LABEL=*) dev=$(findfs "$root" 2>/dev/null) ;; esac
    [ -n "$dev" ] && [ -b "$dev" ] && break
    if [ $tries -le 0 ]; then
      say "root device $root not found (waited $rootdelay s; is a disk attached, e.g. vessel run --disk?); staying in the initramfs"
      return
    fi
    tries=$((tries - 1))
    sleep 0.1
  done
  mkdir -p /newroot
  # Read-only first, so that a disk which turns out to have no init is left as it was.
  if ! mount -t "$rootfstype" -o "ro\${rootflags:+,$rootflags}" "$dev" /newroot 2>/tmp/mount.err; then
    say "cannot mount root $dev as $rootfstype: $(mount_failure "$dev" "$(cat /tmp/mount.err)"); staying in the initramfs"
    return
  fi
  missing=
  [ -e "/newroot$rootinit" ] || [ -L "/newroot$rootinit" ] || missing=" $rootinit"
  for d in /dev /proc /sys; do [ -d "/newroot$d" ] || missing="$missing $d"; done
  if [ -n "$missing" ]; then
    umount /newroot
    say "root $dev has no$missing (not a root file system?); staying in the initramfs (mount $dev /mnt to look at it)"
    return
  fi
  if [ "$rootmode" = rw ]; then
    mount -o remount,rw /newroot 2>/dev/null
    grep -q "^[^ ]* /newroot [^ ]* rw," /proc/mounts || say "root $dev is write-protected (a readonly disk): it stays read-only"
  fi
  # The disk's init finds /dev, /proc and /sys mounted (devpts under /dev moves along).
  mount --move /dev /newroot/dev
  mount --move /proc /newroot/proc
  mount --move /sys /newroot/sys
  exec switch_root /newroot "$rootinit"
}

root= rootfstype=ext4 rootflags= rootdelay=5 rootmode=ro rootinit=/sbin/init
set -f
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root=\${arg#root=} ;;
    rootfstype=*) rootfstype=\${arg#rootfstype=} ;;
    rootflags=*) rootflags=\${arg#rootflags=} ;;
    rootdelay=*) rootdelay=\${arg#rootdelay=} ;;
    init=*) rootinit=\${arg#init=} ;;
    ro|rw) rootmode=$arg ;;
  esac
done
set +f
[ -n "$root" ] && boot_root
rm -f /tmp/mount.err
# --- no root= (or it failed): the initramfs shell --------------------------------------------
`;

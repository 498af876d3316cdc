// The configuration files of the root disk's busybox userland: what busybox init, getty, login,
// udhcpc and the shell read. Plain text, kept apart from the code that lays out and formats the
// disk (images/rootfs.ts).

/** Printed by the root disk's /etc/init.d/rcS when the system is up, right before the gettys start. */
export const ROOTFS_MARKER = 'VESSEL-ROOTFS-OK';

/** The busybox init table: one system start script, a root shell on the serial console (and hvc0). */
export const INITTAB = `# Vessel root disk: busybox init.
::sysinit:/etc/init.d/rcS

# A root shell on the serial console without a password: getty -n asks for no user name and
# -l runs /sbin/autologin (login -f root) instead of login. Set a password with passwd and
# replace -n -l /sbin/autologin by nothing to get a normal login prompt.
ttyS0::respawn:/sbin/getty -n -l /sbin/autologin -L 115200 ttyS0 vt100
# The same on the virtio console (vessel run --hvc <socket>). hvc0 exists only when the device
# does (no hotplug), so without it this entry sleeps instead of being respawned in a loop.
::respawn:/bin/sh -c 'if [ -c /dev/hvc0 ]; then exec /sbin/getty -n -l /sbin/autologin -L 115200 hvc0 vt100; else exec sleep 2147483647; fi'

::ctrlaltdel:/sbin/reboot
# poweroff/reboot: these run before init signals every process; the root is left read-only and clean.
::shutdown:/etc/init.d/rcK
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r 2>/dev/null
`;

/** getty -n -l runs this instead of asking for a user name. */
export const AUTOLOGIN = `#!/bin/sh
# Vessel root disk: log in as root without a password (started by getty -n -l, see /etc/inittab).
exec /bin/login -f root
`;

/**
 * System start. Every mount is skipped when it is already there: the initramfs moves /dev,
 * /proc and /sys over before switch_root. Nothing here waits for the network.
 */
export const RCS = `#!/bin/sh
# Vessel root disk: system start (busybox init runs this once, before the gettys).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

[ -e /proc/mounts ] || mount -t proc proc /proc
mounted() { grep -q "^[^ ]* $1 " /proc/mounts; }

# /etc/fstab's file systems except / (mounted by the initramfs) and noauto ones.
while read -r spec dir type opts rest; do
  case "$spec" in ''|'#'*) continue ;; esac
  case ",$opts," in *,noauto,*) continue ;; esac
  [ "$dir" = / ] && continue
  mounted "$dir" && continue
  mkdir -p "$dir" 2>/dev/null
  mount -t "$type" -o "$opts" "$spec" "$dir" || echo "rcS: could not mount $dir ($type)"
done </etc/fstab

mkdir -p /run/lock
hostname -F /etc/hostname
ip link set lo up

# eth0 by DHCP in the background (udhcpc retries forever), so boot never waits for a server
# that may not exist; see /usr/share/udhcpc/default.script and /run/udhcpc.eth0.log.
echo lo=lo >/run/ifstate
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  echo eth0=eth0 >>/run/ifstate
  udhcpc -f -i eth0 -p /run/udhcpc.eth0.pid -s /usr/share/udhcpc/default.script >/run/udhcpc.eth0.log 2>&1 &
fi

# An SSH server when the image has one (e.g. vessel run ... hostfwd to port 22).
if [ -x /usr/sbin/dropbear ]; then
  mkdir -p /etc/dropbear 2>/dev/null
  # -R: host keys are made on first use (they persist on a writable root); -B: root has no password.
  /usr/sbin/dropbear -R -B -P /run/dropbear.pid 2>/run/dropbear.log
fi

# Named virtio-console ports, as udev's rule makes them under QEMU and libvirt (this disk has no
# udev): /dev/virtio-ports/<name> -> ../vportNpM, from each port's name in sysfs.
for n in /sys/class/virtio-ports/*/name; do
  [ -r "$n" ] && read -r name <"$n" && [ -n "$name" ] || continue
  port=\${n%/name}
  mkdir -p /dev/virtio-ports
  ln -sf "../\${port##*/}" "/dev/virtio-ports/$name"
done

# The QEMU guest agent when the image has it and the host offers its port (vessel host VMs do):
# vessel vm exec, vessel vm shutdown. Without the port the guest simply runs without it.
if [ -x /usr/sbin/qemu-ga ] && [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ]; then
  /usr/sbin/qemu-ga -d -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -f /run/qemu-ga.pid -t /run -l /run/qemu-ga.log
fi

[ -x /etc/rc.local ] && /etc/rc.local

echo ${ROOTFS_MARKER}
`;

/** Shutdown: stop the background services before the root is remounted read-only. */
export const RCK = `#!/bin/sh
# Vessel root disk: system stop (busybox init runs this at poweroff/reboot).
for pidfile in /run/udhcpc.eth0.pid /run/dropbear.pid /run/qemu-ga.pid; do
  [ -r "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done
exit 0
`;

/**
 * /sbin/shutdown, which busybox lacks: qemu-guest-agent's guest-shutdown runs
 * `/sbin/shutdown -h -P +0 "message"` (-h -H for halt, -r for reboot).
 */
export const SHUTDOWN = `#!/bin/sh
# Vessel root disk: shutdown [-h] [-P|-H|-r] [TIME] [MESSAGE], for qemu-guest-agent; busybox's
# poweroff, halt and reboot run /etc/inittab's shutdown actions (rcK, sync, read-only root).
act=poweroff
for a in "$@"; do
  case "$a" in
    -r) act=reboot ;;
    -H) act=halt ;;
  esac
done
exec /bin/busybox "$act"
`;

/**
 * udhcpc's hook: applies the lease (address, routes, MTU, DNS). udhcpc passes the event as $1
 * and the lease in the environment ($ip, $mask as a prefix length, $router, $dns, $domain, ...).
 */
export const UDHCPC_SCRIPT = `#!/bin/sh
# Vessel root disk: udhcpc event hook (deconfig, bound, renew, leasefail, nak).
RESOLV_CONF=/etc/resolv.conf

case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    # A renewal with a new address drops the old one; the same address is kept as it is.
    if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/\${mask:-24} "; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/\${mask:-24}" \${broadcast:+broadcast "$broadcast"} dev "$interface"
    fi
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    if [ -n "$router" ]; then
      while ip route del default dev "$interface" 2>/dev/null; do :; done
      metric=0
      for r in $router; do
        ip route add default via "$r" dev "$interface" metric $metric
        metric=$((metric + 1))
      done
    fi
    if [ -n "$dns" ]; then
      {
        [ -n "$domain" ] && echo "search $domain"
        for d in $dns; do echo "nameserver $d"; done
      } >"$RESOLV_CONF.tmp" && cat "$RESOLV_CONF.tmp" >"$RESOLV_CONF"
      rm -f "$RESOLV_CONF.tmp"
    fi
    echo "udhcpc: $interface $1 $ip/\${mask:-24}\${router:+ via $router}\${dns:+ dns $dns}"
    ;;
  leasefail|nak)
    echo "udhcpc: $interface $1"
    ;;
esac
exit 0
`;

export const FSTAB = `# Vessel root disk. / is mounted by the initramfs (root=/dev/vda, rw or ro from the kernel
# command line); /etc/init.d/rcS mounts the rest that is not mounted yet.
/dev/vda  /         ext4      defaults                    0 1
proc      /proc     proc      nosuid,nodev,noexec         0 0
sysfs     /sys      sysfs     nosuid,nodev,noexec         0 0
devtmpfs  /dev      devtmpfs  nosuid,mode=0755            0 0
devpts    /dev/pts  devpts    nosuid,noexec,gid=5,mode=620 0 0
tmpfs     /dev/shm  tmpfs     nosuid,nodev,mode=1777      0 0
tmpfs     /run      tmpfs     nosuid,nodev,mode=0755      0 0
tmpfs     /tmp      tmpfs     nosuid,nodev,mode=1777      0 0
`;

export const PROFILE = `# Vessel root disk: login shell settings.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PS1='\\w \\$ '
export PAGER=less EDITOR=vi
umask 022
for f in /etc/profile.d/*.sh; do [ -r "$f" ] && . "$f"; done
unset f
`;

export const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;

export const GROUP = `root:x:0:
daemon:x:1:
tty:x:5:
disk:x:6:
users:x:100:
nogroup:x:65534:
`;

/** root has an empty password (a sandbox VM; `passwd` sets one); the others cannot log in. */
export const SHADOW = `root::0:0:99999:7:::
daemon:*:0:0:99999:7:::
nobody:*:0:0:99999:7:::
`;

export const HOSTS = `127.0.0.1 localhost
127.0.1.1 vessel
::1       localhost ip6-localhost ip6-loopback
`;

export const NETWORK_INTERFACES = `# Vessel root disk. rcS brings lo up and runs udhcpc for eth0 at boot (in the background);
# \`ifdown eth0\` and \`ifup eth0\` restart DHCP on it by hand.
auto lo
iface lo inet loopback

iface eth0 inet dhcp
`;

export const MOTD = `Vessel guest: Debian's riscv64 Linux kernel with a busybox userland on a persistent root disk.
\`poweroff\` shuts it down cleanly.
`;

export const OS_RELEASE = `PRETTY_NAME="Vessel guest (busybox)"
NAME="Vessel guest"
ID=vessel
`;

export const SHELLS = `/bin/sh
/bin/ash
`;

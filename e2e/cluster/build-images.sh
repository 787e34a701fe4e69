#!/usr/bin/env bash
# build-images.sh - build the harness' base images as OCI archives in $IMG_DIR (no registry):
#   $PAUSE_IMAGE    static pause from the v1.20.2 tree's build/pause/linux/pause.c (gcc -static)
#   $BUSYBOX_IMAGE  Debian busybox-static + `busybox --install -s` links
#   $NGINX_IMAGE    Debian nginx binary + its shared libs + nginx-common config on the busybox rootfs,
#                   runs `nginx -g 'daemon off;'`
# Names/versions come from lib.sh; the versions are checked against the sources used here.
# Called by `up` when an archive is missing; FORCE=1 rebuilds.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
K8S_SRC=$CP_CACHE/src
mkdir -p "$IMG_DIR"
cd "$IMG_DIR"

need=()
[ -x /bin/busybox ] || need+=(busybox-static)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
{ ldd /bin/busybox 2>&1 || true; } | grep -q 'not a dynamic executable' || die "/bin/busybox is not static (install busybox-static)"
upstream() { local v=${1#*:}; echo "${v%-*}"; }   # Debian version -> upstream version

tar_of() { local r=${1##*/}; echo "$IMG_DIR/${r%%:*}-${r##*:}.oci.tar"; }

# --- pause
tag=$(sed -n 's/^TAG *= *//p' "$K8S_SRC/build/pause/Makefile")
[ "$tag" = "$PAUSE_VERSION" ] || die "pause Makefile TAG is $tag, lib.sh says PAUSE_VERSION=$PAUSE_VERSION"
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$(tar_of "$PAUSE_IMAGE")" ]; then
  gcc -Os -Wall -Werror -static "-DVERSION=v$PAUSE_VERSION-debugsession-e2e" -o "$IMG_DIR/pause" "$K8S_SRC/build/pause/linux/pause.c"
  strip "$IMG_DIR/pause"
  R=$IMG_DIR/rootfs-pause; rm -rf "$R"; mkdir -p "$R"; cp "$IMG_DIR/pause" "$R/pause"
  "$CLUSTER_DIR/mkimage" "$PAUSE_IMAGE" "$R" '{"Entrypoint":["/pause"],"WorkingDir":"/","User":"65535:65535"}' "$(tar_of "$PAUSE_IMAGE")"
  rm -rf "$R"
fi

# --- busybox
v=$(upstream "$(dpkg-query -W -f='${Version}' busybox-static)")
[ "$v" = "$BUSYBOX_VERSION" ] || die "busybox-static is $v, lib.sh says BUSYBOX_VERSION=$BUSYBOX_VERSION"
BB=$IMG_DIR/rootfs-busybox
BB_ENV='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$(tar_of "$BUSYBOX_IMAGE")" ] || [ ! -f "$(tar_of "$NGINX_IMAGE")" ]; then
  rm -rf "$BB"
  mkdir -p "$BB"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var/log,var/www}
  chmod 1777 "$BB/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$BB/etc/passwd"
  printf 'root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n' > "$BB/etc/group"
  printf 'hosts: files dns\npasswd: files\ngroup: files\n' > "$BB/etc/nsswitch.conf"
  cp /bin/busybox "$BB/bin/busybox"
  chroot "$BB" /bin/busybox --install -s
  "$CLUSTER_DIR/mkimage" "$BUSYBOX_IMAGE" "$BB" "{$BB_ENV,\"Cmd\":[\"sh\"],\"WorkingDir\":\"/\"}" "$(tar_of "$BUSYBOX_IMAGE")"
fi

# --- nginx (Debian's nginx binary + host shared libs on top of the busybox rootfs)
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$(tar_of "$NGINX_IMAGE")" ]; then
  D=$IMG_DIR/debs
  if ! ls "$D"/nginx_*.deb "$D"/nginx-common_*.deb >/dev/null 2>&1; then
    mkdir -p "$D"
    ( cd "$D" || exit 1; apt-get download nginx nginx-common 2>&1 | { grep -v unsandboxed || true; } )
  fi
  debs=("$D"/nginx_*.deb)
  v=$(upstream "$(dpkg-deb -f "${debs[-1]}" Version)")
  [ "$v" = "$NGINX_VERSION" ] || die "nginx .deb is $v, lib.sh says NGINX_VERSION=$NGINX_VERSION"
  R=$IMG_DIR/rootfs-nginx; rm -rf "$R"; cp -a "$BB" "$R"
  X=$IMG_DIR/nginx-x; rm -rf "$X"; mkdir -p "$X"
  for f in "$D"/nginx_*.deb "$D"/nginx-common_*.deb; do dpkg-deb -x "$f" "$X"; done
  mkdir -p "$R/usr/sbin" "$R/usr/share"
  cp -a "$X/usr/sbin/nginx" "$R/usr/sbin/"; cp -a "$X/etc/nginx" "$R/etc/"; cp -a "$X/usr/share/nginx" "$R/usr/share/"
  ln -sfn /etc/nginx/sites-available/default "$R/etc/nginx/sites-enabled/default"
  mkdir -p "$R/var/log/nginx" "$R/var/lib/nginx" "$R/var/www/html"
  ln -sf /dev/stdout "$R/var/log/nginx/access.log"; ln -sf /dev/stderr "$R/var/log/nginx/error.log"
  echo "<html><body><h1>Welcome to nginx $NGINX_VERSION (debugsession-operator e2e)</h1></body></html>" > "$R/var/www/html/index.html"
  # shared libraries the binary needs, copied from the host (same Debian release) at the same paths
  for lib in $(ldd "$X/usr/sbin/nginx" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
    mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"   # dereference: host is merged-/usr
  done
  chroot "$R" /usr/sbin/nginx -v 2>/dev/null || die "nginx does not start in the image rootfs (missing libs?)"
  "$CLUSTER_DIR/mkimage" "$NGINX_IMAGE" "$R" "{$BB_ENV,\"Entrypoint\":[\"nginx\",\"-g\",\"daemon off;\"],\"ExposedPorts\":{\"80/tcp\":{}},\"StopSignal\":\"SIGQUIT\",\"WorkingDir\":\"/\"}" "$(tar_of "$NGINX_IMAGE")"
  rm -rf "$X" "$R"
fi
rm -rf "$BB"

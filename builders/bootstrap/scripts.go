package bootstrap

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

// heredocEnd ends the copies of the lock and explicit files embedded in a
// channel-mode script.
const heredocEnd = "SPARKENV_EMBEDDED_EOF"

// platformInfo is what differs between platforms: how the script is run and
// how a node tells its role.
type platformInfo struct {
	Name  string
	Title string
	Runs  string // comment lines
	Role  string // shell that sets ROLE; informational only
}

var platformInfos = map[string]platformInfo{
	Yandex: {
		Name:  Yandex,
		Title: "Yandex Data Proc initialization action",
		Runs: `# Yandex Data Proc runs initialization actions as root on every node when it
# first boots, nodes added by autoscaling included. A failing action fails
# the node, so every step says what it was doing and re-runs are safe.`,
		// Subclusters (master, data, compute) get the same script and no
		// role is handed to it.
		Role: `ROLE=unknown`,
	},
	Dataproc: {
		Name:  Dataproc,
		Title: "Google Dataproc initialization action",
		Runs: `# Google Dataproc runs initialization actions as root on every node while
# the cluster is created, and on workers added later. The node's role comes
# from the metadata server and is only logged: every node gets the same
# environment.`,
		Role: `ROLE=unknown
if [ -x /usr/share/google/get_metadata_value ]; then
  ROLE=$(/usr/share/google/get_metadata_value attributes/dataproc-role 2>/dev/null || echo unknown)
fi`,
	},
	EMR: {
		Name:  EMR,
		Title: "AWS EMR bootstrap action",
		Runs: `# AWS EMR runs bootstrap actions as the hadoop user on every node before
# the cluster's applications start: privileged steps go through sudo.`,
		Role: `ROLE=unknown
if [ -r "$SPARKENV_ROOT/mnt/var/lib/info/instance.json" ]; then
  if grep -Eq '"isMaster" *: *true' "$SPARKENV_ROOT/mnt/var/lib/info/instance.json"; then ROLE=master; else ROLE=core-or-task; fi
fi`,
	},
}

// render returns the script for platform.
func render(platform string, p *plan) ([]byte, error) {
	info, ok := platformInfos[platform]
	if !ok {
		return nil, fmt.Errorf("unknown platform %q", platform)
	}
	var buf bytes.Buffer
	err := scriptTemplate.Execute(&buf, struct {
		P        *plan
		Platform platformInfo
		EOF      string
	}{p, info, heredocEnd})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// quote makes s one shell word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var scriptTemplate = template.Must(template.New("script").Funcs(template.FuncMap{"q": quote}).Parse(scriptText))

const scriptText = `#!/usr/bin/env bash
# {{.Platform.Title}}: puts {{.P.Subject}} on this node.
# Written by sparkenv for {{.P.Target}}; rebuild the target instead of editing.
#
{{.Platform.Runs}}
#
# Every path it touches can be moved with environment variables (tests run it
# for real under SPARKENV_ROOT; the environment itself keeps the path it was
# built for unless SPARKENV_MOUNT_POINT / SPARKENV_PREFIX say otherwise):
#   SPARKENV_ROOT         prefix of the system paths below (default: none)
#   SPARKENV_LOG          log file (default $SPARKENV_ROOT/var/log/sparkenv-bootstrap.log)
#   SPARKENV_STATE_DIR    downloads and state (default $SPARKENV_ROOT/var/lib/sparkenv)
{{- if eq .P.Mode "image"}}
#   SPARKENV_FSTAB        fstab to record the mount in (default $SPARKENV_ROOT/etc/fstab)
#   SPARKENV_MOUNT_POINT  where the image is mounted (default {{.P.MountPoint}})
#   SPARKENV_MOUNT        loop, squashfuse or auto (default auto: loop, else squashfuse)
{{- else}}
#   SPARKENV_PREFIX       where the environment is installed (default {{.P.Prefix}})
#   SPARKENV_INSTALLER    sparkenv, conda or auto (default {{.P.Installer}})
#   SPARKENV_BIN          a sparkenv binary already on the node (skips the download)
{{- end}}
#   SPARKENV_RETRIES      download attempts (default 5)
#   SPARKENV_RETRY_DELAY  seconds before the first retry, doubling after (default 2)
set -euo pipefail
set -o errtrace
umask 022

SPARKENV_ROOT="${SPARKENV_ROOT:-}"
LOG="${SPARKENV_LOG:-$SPARKENV_ROOT/var/log/sparkenv-bootstrap.log}"
STATE_DIR="${SPARKENV_STATE_DIR:-$SPARKENV_ROOT/var/lib/sparkenv}"
RETRIES="${SPARKENV_RETRIES:-5}"
RETRY_DELAY="${SPARKENV_RETRY_DELAY:-2}"
PLATFORM={{q .Platform.Name}}
STEP="starting"
RUNNING=""
CLEANUP_PREFIX=""

say() { printf 'sparkenv bootstrap: %s\n' "$*"; }

# as_root runs a privileged step: directly as root, through sudo otherwise.
as_root() {
  RUNNING="$*"
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    echo "sparkenv bootstrap FAILED: '$*' needs root and sudo is not installed" >&2
    return 1
  fi
}

# The log keeps everything the script and its tools print.
if ! { mkdir -p "$(dirname "$LOG")" && touch "$LOG"; } 2>/dev/null; then
  as_root mkdir -p "$(dirname "$LOG")"
  as_root touch "$LOG"
  as_root chown "$(id -u):$(id -g)" "$LOG"
fi
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!

die() {
  printf 'sparkenv bootstrap FAILED while %s: %s\nsparkenv bootstrap: full log: %s\n' "$STEP" "$*" "$LOG" >&2
  exit 1
}

on_error() {
  local cmd=$3 line=$2
  # A privileged step fails inside as_root: name the step, not "$@".
  if [ "${FUNCNAME[1]:-}" = as_root ]; then
    cmd=$RUNNING
    line=${BASH_LINENO[1]}
  fi
  printf 'sparkenv bootstrap FAILED while %s: "%s" exited with status %s (line %s of %s)\nsparkenv bootstrap: full log: %s\n' \
    "$STEP" "$cmd" "$1" "$line" "$0" "$LOG" >&2
  exit "$1"
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

on_exit() {
  local status=$?
  trap - ERR
  if [ "$status" -ne 0 ] && [ -n "$CLEANUP_PREFIX" ] && [ -d "$CLEANUP_PREFIX" ]; then
    say "removing the partial installation in $CLEANUP_PREFIX"
    as_root find "$CLEANUP_PREFIX" -mindepth 1 -delete || true
  fi
  # Let tee write the last lines before the platform reads the log.
  exec 1>&- 2>&-
  wait "$TEE_PID" 2>/dev/null || true
}
trap on_exit EXIT

# fetch URL DEST downloads with retries and exponential backoff; DEST only
# ever holds a complete download.
fetch() {
  local url=$1 dest=$2 attempt=1 delay=$RETRY_DELAY
  while :; do
    rm -f "$dest.part"
    if fetch_once "$url" "$dest.part"; then
      mv -f "$dest.part" "$dest"
      return 0
    fi
    if [ "$attempt" -ge "$RETRIES" ]; then
      rm -f "$dest.part"
      die "could not download $url ($attempt attempts)"
    fi
    say "download of $url failed (attempt $attempt of $RETRIES), retrying in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
  done
}

fetch_once() {
  local url=$1 out=$2
  case "$url" in
    s3://*)
      command -v aws >/dev/null 2>&1 || die "the aws cli is needed to download $url"
      aws s3 cp --only-show-errors "$url" "$out"
      ;;
    *)
      if command -v curl >/dev/null 2>&1; then
        curl -fsSL --connect-timeout 30 -o "$out" "$url"
      elif command -v wget >/dev/null 2>&1; then
        wget -q -T 30 -O "$out" "$url"
      else
        die "neither curl nor wget is installed: cannot download $url"
      fi
      ;;
  esac
}

# sha_ok FILE SHA256 tells whether FILE has that digest.
sha_ok() {
  printf '%s  %s\n' "$2" "$1" | sha256sum -c --status - 2>/dev/null
}

# verify FILE SHA256 WHAT removes FILE and fails unless it has that digest.
verify() {
  local got
  if sha_ok "$1" "$2"; then
    return 0
  fi
  got=$(sha256sum "$1" | cut -d' ' -f1)
  rm -f "$1"
  die "checksum mismatch for $3: sha256 is $got, expected $2 (the download was removed)"
}

{{.Platform.Role}}
say "platform $PLATFORM, host $(hostname 2>/dev/null || echo unknown), node role $ROLE, running as $(id -un 2>/dev/null || id -u)"

as_root mkdir -p "$STATE_DIR"
STATE_DIR=$(realpath -m -- "$STATE_DIR")
# Downloads land in a directory of the running user on the same file
# system, so moving them into place is a rename.
as_root mkdir -p "$STATE_DIR/tmp"
as_root chown "$(id -u):$(id -g)" "$STATE_DIR/tmp"
{{if eq .P.Mode "image"}}
IMAGE_URL={{q .P.ImageURL}}
IMAGE_SHA256={{q .P.ImageSHA}}
IMAGE_SIZE={{.P.ImageSize}}
MOUNT_POINT="${SPARKENV_MOUNT_POINT:-{{.P.MountPoint}}}"
MOUNT_POINT=$(realpath -m -- "$MOUNT_POINT")
FSTAB="${SPARKENV_FSTAB:-$SPARKENV_ROOT/etc/fstab}"
MOUNT_METHOD="${SPARKENV_MOUNT:-auto}"
IMAGES="$STATE_DIR/images"
IMAGE="$IMAGES/{{.P.ImageFile}}"

case "$MOUNT_METHOD" in
  loop | squashfuse | auto) ;;
  *) die "SPARKENV_MOUNT=$MOUNT_METHOD: want loop, squashfuse or auto" ;;
esac

# mounted_image prints the file mounted at MOUNT_POINT, or nothing.
mounted_image() {
  local src
  src=$(awk -v mp="$MOUNT_POINT" '$2 == mp { s = $1 } END { print s }' /proc/mounts)
  case "$src" in
    /dev/loop*) cat "/sys/block/${src#/dev/}/loop/backing_file" 2>/dev/null || printf '%s\n' "$src" ;;
    *) printf '%s\n' "$src" ;;
  esac
}

say "image $IMAGE_SHA256 ($IMAGE_SIZE bytes) for $MOUNT_POINT"
STEP="checking $MOUNT_POINT"
current=$(mounted_image)
if [ "$current" = "$IMAGE" ]; then
  say "unchanged: $MOUNT_POINT already has image $IMAGE_SHA256 mounted"
  exit 0
fi
if [ -n "$current" ]; then
  case "$current" in
    "$IMAGES"/*.sqfs) say "replacing the image $current mounted at $MOUNT_POINT" ;;
    *) die "$MOUNT_POINT is already a mount point of $current, not of this image: unmount it or set SPARKENV_MOUNT_POINT" ;;
  esac
elif [ -d "$MOUNT_POINT" ] && [ -n "$(ls -A "$MOUNT_POINT")" ]; then
  die "refusing to mount over $MOUNT_POINT: the directory is not empty and holds no image of this script; empty it or set SPARKENV_MOUNT_POINT"
elif [ -e "$MOUNT_POINT" ] && [ ! -d "$MOUNT_POINT" ]; then
  die "$MOUNT_POINT exists and is not a directory"
fi

STEP="downloading $IMAGE_URL"
as_root mkdir -p "$IMAGES"
if [ -f "$IMAGE" ] && sha_ok "$IMAGE" "$IMAGE_SHA256"; then
  say "image already downloaded: $IMAGE"
else
  download="$STATE_DIR/tmp/{{.P.ImageFile}}"
  fetch "$IMAGE_URL" "$download"
  STEP="verifying $IMAGE_URL"
  verify "$download" "$IMAGE_SHA256" "$IMAGE_URL"
  chmod 0444 "$download"
  as_root mv -f "$download" "$IMAGE"
  as_root chown 0:0 "$IMAGE"
  say "downloaded and verified $IMAGE"
fi

STEP="mounting $IMAGE at $MOUNT_POINT"
if [ -n "$current" ]; then
  as_root umount "$MOUNT_POINT"
fi
as_root mkdir -p "$MOUNT_POINT"

mount_loop() {
  as_root mount -t squashfs -o ro,loop "$IMAGE" "$MOUNT_POINT"
}

mount_squashfuse() {
  command -v squashfuse >/dev/null 2>&1 || die "squashfuse is not installed (Debian/Ubuntu: squashfuse; RHEL: squashfuse from EPEL); or use SPARKENV_MOUNT=loop"
  # allow_other: the mount is root's, the environment is for every user.
  as_root squashfuse -o ro,allow_other,fsname="$IMAGE" "$IMAGE" "$MOUNT_POINT"
}

case "$MOUNT_METHOD" in
  loop) mount_loop || die "cannot loop-mount $IMAGE (is the squashfs module available?); SPARKENV_MOUNT=squashfuse mounts it with FUSE" ;;
  squashfuse) mount_squashfuse || die "squashfuse could not mount $IMAGE" ;;
  auto)
    if mount_loop; then
      MOUNT_METHOD=loop
    else
      say "loop mount unavailable, trying squashfuse"
      mount_squashfuse || die "neither a loop mount nor squashfuse could mount $IMAGE"
      MOUNT_METHOD=squashfuse
    fi
    ;;
esac
[ "$(mounted_image)" = "$IMAGE" ] || die "$MOUNT_POINT does not show $IMAGE after mounting it"

STEP="recording the mount in $FSTAB"
if [ "$MOUNT_METHOD" = loop ]; then
  line="$IMAGE $MOUNT_POINT squashfs ro,loop,nofail 0 0"
else
  line="$IMAGE $MOUNT_POINT fuse.squashfuse ro,allow_other,nofail 0 0"
fi
as_root mkdir -p "$(dirname "$FSTAB")"
if [ ! -f "$FSTAB" ] || ! grep -qxF "$line" "$FSTAB"; then
  # Earlier images of this script at the same mount point give way.
  new="$STATE_DIR/tmp/fstab.new"
  if [ -f "$FSTAB" ]; then
    awk -v mp="$MOUNT_POINT" -v dir="$IMAGES/" '!($2 == mp && index($1, dir) == 1)' "$FSTAB" >"$new"
  else
    : >"$new"
  fi
  printf '%s\n' "$line" >>"$new"
  chmod 0644 "$new"
  as_root mv -f "$new" "$FSTAB"
fi
say "mounted $IMAGE at $MOUNT_POINT ($MOUNT_METHOD)"
{{else}}
ENV_NAME={{q .P.EnvName}}
PACKAGES={{.P.Packages}}
CHANNEL_ROOT={{q .P.ChannelRoot}}
LOCK_SHA256={{q .P.LockSHA}}
PREFIX="${SPARKENV_PREFIX:-{{.P.Prefix}}}"
INSTALLER="${SPARKENV_INSTALLER:-{{.P.Installer}}}"
SPARKENV_URL={{q .P.SparkenvURL}}
SPARKENV_SHA256={{q .P.SparkenvSHA256}}
MARKER="$PREFIX/conda-meta/sparkenv-bootstrap.sha256"
WORK="$STATE_DIR/tmp/$ENV_NAME"

say "environment $ENV_NAME ($PACKAGES packages from $CHANNEL_ROOT, lock $LOCK_SHA256) for $PREFIX"
STEP="checking $PREFIX"
if [ -d "$PREFIX/conda-meta" ] && [ -f "$MARKER" ]; then
  installed=$(cat "$MARKER")
  if [ "$installed" = "$LOCK_SHA256" ]; then
    say "unchanged: $PREFIX already holds environment $ENV_NAME (lock $LOCK_SHA256)"
    exit 0
  fi
  die "$PREFIX holds another environment installed by this kind of script (lock $installed): remove it or set SPARKENV_PREFIX"
fi
if [ -e "$PREFIX" ] && [ ! -d "$PREFIX" ]; then
  die "$PREFIX exists and is not a directory"
fi
if [ -d "$PREFIX" ] && [ -n "$(ls -A "$PREFIX")" ]; then
  die "refusing to install into $PREFIX: it is not empty and was not installed by this script; empty it or set SPARKENV_PREFIX"
fi

case "$INSTALLER" in
  auto)
    if command -v conda >/dev/null 2>&1; then INSTALLER=conda; else INSTALLER=sparkenv; fi
    ;;
  conda | sparkenv) ;;
  *) die "SPARKENV_INSTALLER=$INSTALLER: want sparkenv, conda or auto" ;;
esac

STEP="writing the pinned package lists"
mkdir -p "$WORK"
# The exact packages, as a sparkenv lock and as a CEP 23 explicit file; both
# name the published mirror's files with their sha256.
cat >"$WORK/{{.P.LockName}}" <<'{{.EOF}}'
{{.P.Lock}}{{.EOF}}
verify "$WORK/{{.P.LockName}}" "$LOCK_SHA256" "the embedded lock"
cat >"$WORK/{{.P.ExplicitName}}" <<'{{.EOF}}'
{{.P.Explicit}}{{.EOF}}

install_with_conda() {
  local conda
  conda=$(command -v conda) || die "installer conda: conda is not on PATH; SPARKENV_INSTALLER=sparkenv uses the sparkenv binary"
  STEP="installing $ENV_NAME into $PREFIX with $conda"
  say "$STEP"
  as_root "$conda" create --yes --quiet --prefix "$PREFIX" --file "$WORK/{{.P.ExplicitName}}"
}

install_with_sparkenv() {
  local bin="${SPARKENV_BIN:-}"
  if [ -z "$bin" ]; then
    bin="$WORK/sparkenv"
    [ -n "$SPARKENV_URL" ] || die "no URL of a sparkenv binary is known: set SPARKENV_BIN to one on this node"
    if [ ! -x "$bin" ] || { [ -n "$SPARKENV_SHA256" ] && ! sha_ok "$bin" "$SPARKENV_SHA256"; }; then
      STEP="downloading sparkenv from $SPARKENV_URL"
      fetch "$SPARKENV_URL" "$bin.download"
      if [ -n "$SPARKENV_SHA256" ]; then
        verify "$bin.download" "$SPARKENV_SHA256" "the sparkenv binary $SPARKENV_URL"
      else
        say "warning: no sha256 is known for $SPARKENV_URL; the packages it installs are verified all the same"
      fi
      chmod 0755 "$bin.download"
      mv -f "$bin.download" "$bin"
    fi
  fi
  STEP="installing $ENV_NAME into $PREFIX with $bin"
  say "$STEP"
  as_root env SPARKENV_PKGS_DIR="$WORK/pkgs" "$bin" install --lock "$WORK/{{.P.LockName}}" --env "$ENV_NAME" --prefix "$PREFIX"
}

CLEANUP_PREFIX="$PREFIX"
"install_with_$INSTALLER"
[ -d "$PREFIX/conda-meta" ] || die "$INSTALLER finished but $PREFIX/conda-meta is missing"
STEP="recording the installation"
printf '%s\n' "$LOCK_SHA256" >"$WORK/marker"
as_root mv -f "$WORK/marker" "$MARKER"
CLEANUP_PREFIX=""
as_root rm -rf "$WORK/pkgs"
say "installed environment $ENV_NAME into $PREFIX ($INSTALLER)"
{{end -}}
`

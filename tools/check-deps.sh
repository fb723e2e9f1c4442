#!/usr/bin/env bash
# check-deps.sh [--deps-script FILE] BUILD_DIR...
#
# Fails when a build used something a new Debian 12 machine would not have after
# tools/install-deps.sh. It lists every system header the build read (ninja's dependency log)
# and every shared library the built binaries and tests load (ldd), finds the Debian package of
# each file (dpkg -S), and names every file whose package is
#   - not in install-deps.sh's list,
#   - not pulled in by one that is (apt's dependency closure of the list, Depends and
#     Pre-Depends only: Recommends are not installed, install-deps.sh says --no-install-recommends),
#   - and not part of the Debian base system (Essential or Priority: required, with their
#     dependencies),
# or that no package owns at all (installed by hand). Files under /usr/local/cuda* are exempt: the
# CUDA toolkit is optional and not a Debian package here (README, "Running on a GPU").
#
# Without this check a package that happens to be on the developers' machine can hide a missing
# install step until a new user's build fails (it did: opencv2/imgcodecs.hpp).
# --deps-script names another install script to read the list from (the check's own test uses
# a doctored copy). Exit status: 0 clean, 1 something unlisted, 2 the check could not run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
deps_script=$top/tools/install-deps.sh
dirs=()
while [ $# -gt 0 ]; do
  case $1 in
    --deps-script) deps_script=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) dirs+=("$1"); shift ;;
  esac
done
[ ${#dirs[@]} -gt 0 ] || { echo "usage: check-deps.sh [--deps-script FILE] BUILD_DIR..." >&2; exit 2; }
for tool in dpkg-query apt-cache ninja ldd readelf; do
  command -v "$tool" >/dev/null || { echo "check-deps: needs $tool (a Debian system)" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- the files the build used
: >"$work/files"
for dir in "${dirs[@]}"; do
  [ -f "$dir/build.ninja" ] || { echo "check-deps: $dir is not a Ninja build directory" >&2; exit 2; }
  build=$(cd "$dir" && pwd)
  # Headers: ninja -t deps prints each object, then its inputs indented by four spaces.
  ninja -C "$dir" -t deps | awk '/^    \//{print $1}' >>"$work/files"
  # Libraries: every ELF executable the build made (binaries, tests), as the loader resolves them.
  while IFS= read -r exe; do
    readelf -h "$exe" >/dev/null 2>&1 || continue
    ldd "$exe" | awk -v exe="$exe" '
      /=> not found/ { print "MISSING " $1 " " exe; next }
      /=> \//        { print $3; next }
      /^\t\//        { print $1 }' >>"$work/files"
  done < <(find "$build" -type f -perm -u+x -not -path '*/CMakeFiles/*')
done
if grep -q '^MISSING ' "$work/files"; then
  grep '^MISSING ' "$work/files" | sort -u | while read -r _ lib exe; do
    echo "check-deps: $exe needs $lib, which the loader cannot find" >&2
  done
  exit 1
fi
sort -u "$work/files" | grep -v -e "^$top/" -e '^/usr/local/cuda' >"$work/system" || true

# ---- each file's package. dpkg knows a file by the path its package ships, which may be a
# symlink's target (alternatives: cblas.h) or the other side of the merged /usr (/lib -> usr/lib).
owner() {
  local p=$1 real
  real=$(realpath -m "$p")
  case $real in /usr/local/cuda*) echo "-exempt-"; return ;; esac
  for c in "$p" "$real" "${p#/usr}" "/usr$p" "${real#/usr}" "/usr$real"; do
    [ -n "$c" ] || continue
    local pkg
    pkg=$(dpkg-query -S "$c" 2>/dev/null | grep -v '^diversion' | head -1 | sed -E 's/[:,].*//') || true
    [ -n "$pkg" ] && { echo "$pkg"; return; }
  done
  echo "-none-"
}
# One dpkg-query for all the files first (fast); the slow per-file candidates only for the rest.
xargs -r dpkg-query -S <"$work/system" 2>/dev/null | grep -v '^diversion' |
  sed -E 's/^([^:,]+)(:[a-z0-9]+)?(, [^:,]+(:[a-z0-9]+)?)*: /\1\t/' >"$work/owned" || true
cut -f2 "$work/owned" | sort -u >"$work/owned_paths"
: >"$work/map"
cat "$work/owned" >>"$work/map"
while IFS= read -r f; do
  printf '%s\t%s\n' "$(owner "$f")" "$f" >>"$work/map"
done < <(comm -23 "$work/system" "$work/owned_paths")

# ---- what a new machine has: the list, its closure, the base system and its closure.
# shellcheck disable=SC2207
listed=($(bash "$deps_script" --list))
[ ${#listed[@]} -gt 0 ] || { echo "check-deps: $deps_script --list printed no packages" >&2; exit 2; }
base=($(dpkg-query -W -f='${Package} ${Priority} ${Essential}\n' |
        awk '$2 == "required" || $3 == "yes" {print $1}'))
closure() {
  apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null | grep -v '^ ' | sed 's/:.*//' || true
}
{ printf '%s\n' "${listed[@]}"; closure "${listed[@]}"; closure "${base[@]}"; } |
  sort -u >"$work/allowed"

# ---- the verdict, one line per package (with one of its files and how many more)
bad=0
while IFS=$'\t' read -r pkg file; do
  case $pkg in -exempt-) continue ;; esac
  if [ "$pkg" = "-none-" ]; then
    echo "check-deps: $file is in no Debian package (installed by hand?); a new machine lacks it" >&2
    bad=1
  elif ! grep -qxF "$pkg" "$work/allowed"; then
    printf '%s\t%s\n' "$pkg" "$file" >>"$work/unlisted"
  fi
done <"$work/map"
if [ -s "$work/unlisted" ]; then
  sort "$work/unlisted" | awk -F'\t' -v script="${deps_script#"$top"/}" '
    $1 != last { if (last != "") report(); last = $1; first = $2; n = 0 }
    { n++ }
    function report() {
      more = n > 1 ? sprintf(" (and %d more of its files)", n - 1) : ""
      printf "check-deps: %s%s is from package %s, which %s does not install " \
             "(neither listed nor a dependency of a listed package)\n", first, more, last, script
    }
    END { if (last != "") report() }' >&2
  bad=1
fi
[ $bad -eq 0 ] || exit 1
echo "check-deps: $(wc -l <"$work/system") system files (headers and libraries) of ${dirs[*]}," \
  "all from install-deps.sh's $(wc -l < <(printf '%s\n' "${listed[@]}")) packages, their dependencies or the base system"

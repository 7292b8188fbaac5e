#!/bin/bash
# Prints, one a line, the Debian packages that provide the shared libraries
# the given ELF files (programs and modules) load, so that the runtime stage
# of docker/Dockerfile installs exactly what the build produced needs and a
# new library dependency cannot be forgotten.  Runs in the build stage,
# where the -dev packages (and so the libraries) are installed.  Libraries
# that no package owns (our own, under the install tree) are skipped.
# Usage: docker/runtime-deps.sh FILE...   Exits 1 if a library is missing.
set -euo pipefail

[ $# -gt 0 ] || { echo "runtime-deps: usage: runtime-deps.sh ELF-FILE..." >&2; exit 2; }

# Owner of one library path; dpkg knows a file under the path its package
# shipped it at, which with merged /usr may differ from what ldd printed.
owner () {
  local lib=$1 real candidates c
  real=$(readlink -f "$lib")
  candidates=("$lib" "$real")
  case "$lib" in /usr/*) candidates+=("${lib#/usr}") ;; *) candidates+=("/usr$lib") ;; esac
  case "$real" in /usr/*) candidates+=("${real#/usr}") ;; *) candidates+=("/usr$real") ;; esac
  for c in "${candidates[@]}"; do
    if dpkg-query -S "$c" 2>/dev/null | head -n 1 | cut -d: -f1; then
      return 0
    fi
  done
  return 0
}

status=0
libs=()
for f in "$@"; do
  out=$(ldd "$f" 2>&1) || { echo "runtime-deps: ldd $f failed: $out" >&2; exit 1; }
  if grep -q 'not found' <<<"$out"; then
    # Our own libraries resolve only once installed; anything else is fatal.
    while read -r name _; do
      case "$name" in libtitan*) ;; *) echo "runtime-deps: $f needs $name, not found" >&2; status=1 ;; esac
    done < <(grep 'not found' <<<"$out")
  fi
  while read -r path; do libs+=("$path"); done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$out")
done
[ $status -eq 0 ] || exit 1
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  owner "$lib"
done | sort -u

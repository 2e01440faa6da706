# Sourced by the image builds (system-vm, stock-kernel): one way to fetch a pinned Debian package.
#
# apt_download LABEL PKG VERSION DIR HINT
#   puts PKG=VERSION's .deb in DIR (kept: a later call finds it there) and prints its path. A fresh
#   machine's package lists may predate the version: as root it runs apt-get update once and tries
#   again. On failure it prints apt-get's log and HINT (what to do) and exits the script.
apt_download() {
  local label="$1" pkg="$2" version="$3" dir="$4" hint="$5" deb
  deb="$(ls "$dir/${pkg}_${version}_"*.deb 2>/dev/null | head -1 || true)"
  if [ -z "$deb" ]; then
    echo "$label fetching $pkg $version" >&2
    mkdir -p "$dir"
    _apt_get() { (cd "$dir" && apt-get download -q "$pkg=$version" >"$dir/apt.log" 2>&1); }
    _apt_get || { [ "$(id -u)" -eq 0 ] && echo "$label apt-get update (the package lists lack it)" >&2 && apt-get update -qq >&2 && _apt_get; } \
      || { cat "$dir/apt.log" >&2; echo "$label could not download $pkg=$version ($hint)" >&2; exit 1; }
    deb="$(ls "$dir/${pkg}_${version}_"*.deb 2>/dev/null | head -1 || true)"
    [ -n "$deb" ] || { echo "$label apt-get download left no ${pkg}_${version}_*.deb in $dir" >&2; exit 1; }
  fi
  echo "$deb"
}

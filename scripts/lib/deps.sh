# Installing what the build and tests need on a fresh Debian 12 machine.

# Tauri's build and webview, the headless desktop test stack, the keychain, Postgres, sqlite3,
# GNU time (the command-line tests' peak memory of one command).
TEST_APT_PACKAGES=(
  pkg-config build-essential libssl-dev
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev
  xvfb xauth dbus dbus-x11 at-spi2-core gnome-keyring webkit2gtk-driver
  postgresql-15 sqlite3 time
)

# Building and checking the .deb and .rpm (scripts/package, scripts/package-test): rpm for
# `rpm -qlp`, man-db for `man vigil`, desktop-file-utils to validate the desktop entry.
PACKAGE_APT_PACKAGES=(rpm man-db desktop-file-utils)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1
  fi
}

ensure_apt_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "apt packages: all present"
  fi
}

ensure_rust_components() {
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
}

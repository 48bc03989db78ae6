# tauri-driver: the WebDriver bridge between a test and the Tauri app (it starts the app and
# hands commands to WebKitWebDriver). Defines ensure_tauri_driver, which sets TAURI_DRIVER.

TAURI_DRIVER_VERSION=2.0.4
TAURI_DRIVER_ROOT=${VIGIL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil/tools}/tauri-driver-$TAURI_DRIVER_VERSION

# Installs the pinned tauri-driver into TAURI_DRIVER_ROOT unless it is already there.
ensure_tauri_driver() {
  TAURI_DRIVER=$TAURI_DRIVER_ROOT/bin/tauri-driver
  if [ ! -x "$TAURI_DRIVER" ]; then
    echo "installing tauri-driver $TAURI_DRIVER_VERSION into $TAURI_DRIVER_ROOT (compiles from crates.io, about 2 minutes)"
    nice -n 10 cargo install --locked --quiet --force --root "$TAURI_DRIVER_ROOT" "tauri-driver@$TAURI_DRIVER_VERSION"
  fi
  echo "tauri-driver $TAURI_DRIVER_VERSION at $TAURI_DRIVER"
}

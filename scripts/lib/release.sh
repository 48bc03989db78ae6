# The one release build that scripts/package, scripts/desktop-bench and scripts/e2e (with
# VIGIL_E2E_RELEASE=1) share. Always the same set of packages in one cargo invocation, so the
# features of shared dependencies unify the same way every time and nothing is compiled twice:
# the desktop app, the command line and the bare Tauri window (the memory floor). The
# WebDriver clients of e2e/ (tests, desktop-bench, first-run) stay debug builds: they only
# drive the app, and a release build of them would compile the dependency tree a second time
# with their features (tokio's process, for one). Defines build_release.

# True when ui/dist is newer than every UI source (rebuilding it would re-embed it into the
# app and relink it for nothing).
ui_dist_current() {
  local ui=$1/ui
  [ -f "$ui/dist/index.html" ] && [ -x "$ui/node_modules/.bin/tauri" ] &&
    [ -z "$(find "$ui/src" "$ui/index.html" "$ui/package.json" "$ui/package-lock.json" \
      "$ui/vite.config.ts" "$ui/svelte.config.js" -newer "$ui/dist/index.html" -print -quit)" ]
}

build_release() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  if ui_dist_current "$root"; then
    echo "UI: ui/dist is current"
  else
    "$root/scripts/build-ui" >/dev/null
  fi
  cargo build --release --locked -p vigil -p vigil-desktop -p vigil-floor
}

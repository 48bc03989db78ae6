# The supply-chain check: every crate in Cargo.lock against the RustSec advisories vendored in
# supply-chain/advisory-db/, offline, with a pinned cargo-deny (configuration: deny.toml).
# Defines supply_chain_check. Needs cargo, git and a reachable crates.io.

CARGO_DENY_VERSION=0.20.2
SUPPLY_CHAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# One folder per cargo-deny version, outside the work tree, so a machine compiles it once.
CARGO_DENY_ROOT=${VIGIL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil/tools}/cargo-deny-$CARGO_DENY_VERSION
# cargo-deny looks for the database of deny.toml's db-urls entry at
# <db-path>/advisory-db-<xxhash64 of the url>: this is the name cargo-deny 0.20.2 gives
# https://github.com/rustsec/advisory-db. Change it together with CARGO_DENY_VERSION or db-urls
# (`cargo deny -L debug ... check advisories` prints the path it opens).
ADVISORY_DB_CHECKOUT=$SUPPLY_CHAIN_ROOT/target/advisory-dbs/advisory-db-3157b0e258782691
# A snapshot older than this is reported: refresh it with scripts/refresh-advisories.
ADVISORY_DB_MAX_AGE_DAYS=90

# Installs the pinned cargo-deny into CARGO_DENY_ROOT unless it is already there. Sets CARGO_DENY.
ensure_cargo_deny() {
  CARGO_DENY=$CARGO_DENY_ROOT/bin/cargo-deny
  local have
  have=$("$CARGO_DENY" --version 2>/dev/null || true)
  if [ "$have" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    echo "installing cargo-deny $CARGO_DENY_VERSION into $CARGO_DENY_ROOT (compiles from crates.io, about 5 minutes on 2 cores)"
    nice -n 10 cargo install --locked --quiet --force --root "$CARGO_DENY_ROOT" "cargo-deny@$CARGO_DENY_VERSION"
  fi
  echo "$("$CARGO_DENY" --version) at $CARGO_DENY"
}

# Field of supply-chain/advisory-db/SNAPSHOT, e.g. snapshot_field commit.
snapshot_field() {
  sed -n "s/^$1 = \"\(.*\)\"\$/\1/p" "$SUPPLY_CHAIN_ROOT/supply-chain/advisory-db/SNAPSHOT"
}

# cargo-deny reads an advisory database only from a git checkout: rebuild one from the vendored
# files, dated as the upstream commit it was copied from.
prepare_offline_advisory_db() {
  local commit date age
  commit=$(snapshot_field commit)
  date=$(snapshot_field date)
  if [ -z "$commit" ] || [ -z "$date" ]; then
    echo "supply-chain/advisory-db/SNAPSHOT names no commit and date" >&2
    return 1
  fi
  rm -rf "$ADVISORY_DB_CHECKOUT"
  mkdir -p "$ADVISORY_DB_CHECKOUT"
  cp -R "$SUPPLY_CHAIN_ROOT/supply-chain/advisory-db/." "$ADVISORY_DB_CHECKOUT/"
  (
    unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
    cd "$ADVISORY_DB_CHECKOUT" || exit
    git init -q
    git add -A
    GIT_AUTHOR_NAME=vigil GIT_AUTHOR_EMAIL=vigil@localhost GIT_AUTHOR_DATE="$date" \
      GIT_COMMITTER_NAME=vigil GIT_COMMITTER_EMAIL=vigil@localhost GIT_COMMITTER_DATE="$date" \
      git -c commit.gpgsign=false -c core.hooksPath=/dev/null commit -q -m "RustSec advisory-db $commit (vendored)"
  )
  age=$(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 ))
  echo "advisory-db snapshot: $commit of $date ($age days old), $(find "$ADVISORY_DB_CHECKOUT/crates" -name '*.md' | wc -l) advisories"
  if [ "$age" -gt "$ADVISORY_DB_MAX_AGE_DAYS" ]; then
    echo "WARNING: the advisory snapshot is over $ADVISORY_DB_MAX_AGE_DAYS days old; advisories published since are not checked." >&2
    echo "WARNING: refresh it with scripts/refresh-advisories on a machine that reaches the advisory-db repository." >&2
  fi
}

# The check scripts/test runs after clippy: fails on any advisory deny.toml does not ignore.
supply_chain_check() {
  printf '\n== %s ==\n' "supply chain: RustSec advisories (cargo deny, offline, vendored snapshot)"
  ensure_cargo_deny
  prepare_offline_advisory_db
  # cargo-deny reads the whole graph with cargo metadata, which needs every package in
  # Cargo.lock, those of other platforms too: download them first (from crates.io).
  (
    cd "$SUPPLY_CHAIN_ROOT" || exit
    cargo fetch --locked --quiet || exit
    "$CARGO_DENY" --manifest-path Cargo.toml --config deny.toml --workspace --all-features \
      --locked --offline check advisories
  )
}

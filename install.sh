#!/usr/bin/env bash
# GoSIP installer for Debian 12 (bookworm): system packages + npm dependencies.
#   ./install.sh         what GoSIP needs to run (rtpengine for media, Node packages)
#   ./install.sh --dev   also what the test suite drives: sipp, baresip, Chromium
# Runs as root, or as a user with sudo. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }

# Node.js 20.19+ is required (vite, wrangler and the Workers test pool need it).
if ! command -v node >/dev/null 2>&1; then
  echo "install.sh: Node.js 20.19 or newer is required (Debian: install nodejs from your preferred source)." >&2
  exit 1
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("install.sh: Node.js "+process.versions.node+" is too old; 20.19 or newer is required."); process.exit(1) }'

packages=(rtpengine-daemon)
if [ "$dev" = 1 ]; then
  packages+=(sip-tester baresip chromium procps iproute2)
fi

if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "install.sh: run as root or install sudo to add: ${packages[*]}" >&2; exit 1
    fi
  fi
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A passing mirror or network fault should not fail an install: retry downloads.
    $sudo apt-get -o Acquire::Retries=3 update -qq
    $sudo apt-get -o Acquire::Retries=3 install -y -qq --no-install-recommends "${missing[@]}"
  else
    step "Debian packages already installed: ${packages[*]}"
  fi
else
  echo "install.sh: apt-get not found; install these yourself: ${packages[*]}" >&2
fi

step "npm packages"
npm ci --no-audit --no-fund --fetch-retries=4

step "done"
if [ "$dev" = 1 ]; then echo "Run the tests with: npm test"; else echo "Start GoSIP with: npm start"; fi

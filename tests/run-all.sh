#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what the tests need, then runs
# formatting, lint and every test. Usage: tests/run-all.sh
#
# - Debian packages: prometheus (2.42, with promtool), victoria-metrics and
#   prometheus-blackbox-exporter (0.23), for the tests against real peers.
# - moto[server] (the EC2 emulator) from PyPI, in a virtualenv under ~/.cache/promfed/venv
#   (Debian's pip refuses system-wide installs).
# - Build caches stay outside the checkout: CARGO_TARGET_DIR defaults to ~/.cache/promfed/target,
#   so a second run is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/promfed/target}"
# The AWS SDK (EC2 discovery) must never probe the instance-metadata address in tests.
export AWS_EC2_METADATA_DISABLED=true

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_pkgs=()
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v victoria-metrics >/dev/null 2>&1 || need_pkgs+=(victoria-metrics)
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || need_pkgs+=(prometheus-blackbox-exporter)
# The openssl command line makes certificates the way users do (issue 13's self-signed CA:TRUE).
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# Tests name `localhost` (certificates' names, probe targets, listen addresses). A Debian
# installer writes it into /etc/hosts; a bare root (debootstrap, some images) has no /etc/hosts.
if ! getent hosts localhost >/dev/null 2>&1; then
  echo "== /etc/hosts: adding localhost (it did not resolve)"
  printf '127.0.0.1\tlocalhost\n' | $SUDO tee -a /etc/hosts >/dev/null
fi
# Debian starts the packaged Prometheus as a service where it can; the tests start their own.
echo "== peers: $(prometheus --version 2>&1 | head -1); victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null); $(prometheus-blackbox-exporter --version 2>&1 | head -1)"

VENV="$HOME/.cache/promfed/venv"
if [ ! -x "$VENV/bin/moto_server" ]; then
  echo "== installing moto[server] into $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
fi
export PROMFED_MOTO_SERVER="$VENV/bin/moto_server"
echo "== peers: moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)')"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-features --quiet 2>&1 | tee "${CARGO_TARGET_DIR}/last-test.log"

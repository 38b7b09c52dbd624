#!/usr/bin/env bash
# Installs the Debian tools the test suite drives for real: mosquitto (external-broker path),
# promtool (exposition and alert-rule checks) and chromium (the live page). Skips what is present,
# so a developer machine pays for it once. A tool that cannot be installed fails the run loudly.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  echo "setup: mosquitto, promtool and chromium already present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "setup: installing ${need[*]} from Debian packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps chromium from pulling a desktop; policy-rc.d keeps mosquitto's
# system service from starting (tests start their own brokers on free ports).
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  $SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  made_policy=1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d

for tool in mosquitto promtool chromium; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "setup: $tool is still missing after apt-get install" >&2
    exit 1
  fi
done
echo "setup: done"

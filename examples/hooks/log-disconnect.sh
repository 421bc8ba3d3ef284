#!/bin/sh
# A post-disconnect hook that appends one line per session to a log file.
# The log path comes from the configuration (command.env or command.commands[].env):
#   "env": ["HOOK_LOG=/var/log/sftpgo/disconnects.log"]
# A hook must finish within command.timeout; keep it short, or fork long work and exit.
set -eu
log="${HOOK_LOG:-/tmp/sftpgo-disconnects.log}"
# date is not on the (cleared) PATH: use its absolute path.
now=$(/bin/date -u +%Y-%m-%dT%H:%M:%SZ)
printf '%s protocol=%s user=%s ip=%s duration_ms=%s\n' \
  "$now" "$SFTPGO_CONNECTION_PROTOCOL" "$SFTPGO_CONNECTION_USERNAME" \
  "$SFTPGO_CONNECTION_IP" "$SFTPGO_CONNECTION_DURATION" >> "$log"

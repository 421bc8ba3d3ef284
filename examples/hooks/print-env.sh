#!/bin/sh
# A post-disconnect hook that prints what it received: its arguments and its whole environment.
# SFTPGo (and hookctl) run it without a shell and with a cleared environment: only command.env,
# the matching command.commands[].env and the four SFTPGO_CONNECTION_* variables.
echo "called as: $0 $*"
echo "environment:"
/usr/bin/env | /usr/bin/sort | /usr/bin/sed 's/^/  /'

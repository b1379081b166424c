#!/usr/bin/python3
"""Runs a command with adjtimex(2) and clock_adjtime(2) denied with EPERM, as systemd's
ProtectClock=yes (its @clock system call filter) does to a service, even for reading.

    deny-clock.py /path/to/program args...
"""
import errno
import os
import sys

import seccomp

rules = seccomp.SyscallFilter(seccomp.ALLOW)
# glibc's adjtimex() is clock_adjtime(CLOCK_REALTIME) on current versions: deny both.
for name in ("adjtimex", "clock_adjtime"):
    rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
rules.load()
os.execv(sys.argv[1], sys.argv[1:])

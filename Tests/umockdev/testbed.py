#!/usr/bin/python3
"""A fake udev world for the hotplug tests: USB boards whose ttys are ptys.

Run under umockdev-wrapper (which preloads libumockdev-preload.so.0, needed to emit
uevents). Reads one command per line on stdin, answers one line on stdout:

  add PORT TTY VID PID SERIAL|-   plug a board in at USB port PORT (e.g. 1-1) as /dev/TTY
  remove PORT TTY                 unplug it (a remove uevent, then the device goes)
  send TTY TEXT                   the board prints TEXT and a newline
  start ARG...                    start the gateway with ARGs (JSON list) in this fake world
  startas UID ARG...              the same, as user UID (not root: permissions apply)
  chmod TTY MODE                  set the permissions of /dev/TTY (octal), as udev rules would
  fds                             how many file descriptors the gateway has open
  wait                            wait for the gateway to exit by itself: its exit status
  stop                            SIGTERM the gateway and wait for it: its exit status
  quit

Answers are `ok [value]` or `error reason`. umockdev 0.17 cannot add a syspath or tty
name twice, even after removal: each plug gets a new port and tty name.
"""
import ctypes
import errno
import json
import os
import signal
import subprocess
import sys
import time

import gi
gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

testbed = UMockdev.Testbed.new()
gateway = None
masters = {}
minor = [0]


def plug(port, tty, vid, pid, serial):
    usb = f"/devices/pci0000:00/0000:00:14.0/usb1/{port}"
    serial_line = f"A: serial={serial}\n" if serial != "-" else ""
    minor[0] += 1
    testbed.add_from_string(
        f"P: {usb}\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\n"
        f"A: idVendor={vid}\nA: idProduct={pid}\n{serial_line}A: manufacturer=wiregate test\nA: product=fake board\n\n"
        f"P: {usb}/{port}:1.0\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_interface\nE: DRIVER=cdc_acm\n\n"
        f"P: {usb}/{port}:1.0/tty/{tty}\nN: {tty}\nE: SUBSYSTEM=tty\nE: DEVNAME=/dev/{tty}\nA: dev=166:{minor[0]}\n")
    masters[tty] = testbed.get_dev_fd(f"/dev/{tty}")
    if run_as[0] is not None:
        open_to_all()
    return f"/sys{usb}/{port}:1.0/tty/{tty}"


def unplug(port, tty):
    usb = f"/sys/devices/pci0000:00/0000:00:14.0/usb1/{port}"
    tty_path = f"{usb}/{port}:1.0/tty/{tty}"
    testbed.uevent(tty_path, "remove")
    testbed.remove_device(tty_path)
    testbed.remove_device(f"{usb}/{port}:1.0")
    testbed.remove_device(usb)
    masters.pop(tty, None)


def send(tty, text):
    # Until the gateway has the node open, the pty's other end says EIO: retry a while.
    data = (text + "\n").encode()
    deadline = time.monotonic() + 10
    while True:
        try:
            os.write(masters[tty], data)
            return
        except OSError as error:
            if error.errno not in (errno.EIO, errno.EAGAIN) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


run_as = [None]


def open_to_all():
    """Lets a gateway running as another user into the fake world (mkdtemp makes it 0700, and
    umockdev's per-device ioctl sockets are root's): the device nodes keep their own modes."""
    root = testbed.get_root_dir()
    for directory, subdirectories, files in os.walk(root):
        os.chmod(directory, 0o777)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o777)


def chmod(tty, mode):
    """Sets the permissions of the pty behind /dev/TTY (udev rules do that after `add`)."""
    os.chmod(os.path.realpath(os.path.join(testbed.get_root_dir(), "dev", tty)), int(mode, 8))


def start(args, uid=None):
    global gateway
    env = dict(os.environ)
    env["UMOCKDEV_DIR"] = testbed.get_root_dir()
    env["LD_PRELOAD"] = "libumockdev-preload.so.0"
    log = open(os.environ.get("WIREGATE_TESTBED_LOG", "/dev/null"), "ab")
    libc = ctypes.CDLL("libc.so.6", use_errno=True)

    if uid is not None:
        run_as[0] = uid
        open_to_all()

    def die_with_parent():
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: an aborted testbed leaves no orphan

    gateway = subprocess.Popen(args, env=env, stdout=log, stderr=log, preexec_fn=die_with_parent)
    return gateway.pid


def main():
    for line in sys.stdin:
        words = line.rstrip("\n").split(" ", 2)
        try:
            command = words[0]
            if command == "add":
                port, tty, vid, pid, serial = line.split()[1:]
                answer = plug(port, tty, vid, pid, serial)
            elif command == "remove":
                unplug(words[1], words[2])
                answer = ""
            elif command == "send":
                send(words[1], words[2] if len(words) > 2 else "")
                answer = ""
            elif command == "start":
                answer = str(start(json.loads(line[len("start "):])))
            elif command == "startas":
                uid, argv = line.split(" ", 2)[1:]
                answer = str(start(json.loads(argv), uid=int(uid)))
            elif command == "chmod":
                chmod(words[1], words[2])
                answer = ""
            elif command == "fds":
                answer = str(len(os.listdir(f"/proc/{gateway.pid}/fd")))
            elif command == "wait":
                answer = str(gateway.wait(timeout=20))
            elif command == "stop":
                gateway.send_signal(signal.SIGTERM)
                answer = str(gateway.wait(timeout=20))
            elif command == "quit":
                break
            else:
                raise ValueError(f"unknown command {command}")
            print(f"ok {answer}".rstrip(), flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is answered, the test decides
            print(f"error {type(error).__name__}: {error}", flush=True)
    if gateway and gateway.poll() is None:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=20)


main()

#!/usr/bin/env python3
"""Screenshots a real Home Assistant's device page for a wiregate board, logged in as a person.

    .build/ha-venv/bin/python scripts/homeassistant/screenshot.py [--out docs/homeassistant-device.png]
    .build/ha-venv/bin/python scripts/homeassistant/screenshot.py --url http://127.0.0.1:M [--device NAME]

Without --url it builds the whole world in a fresh temp dir on free 127.0.0.1 ports: mosquitto,
Home Assistant 2024.3.3 (config from prepare.py: user test/test, mqtt entry, onboarding done),
two simulated kv boards (`front-door`, whose door opens and closes so the page shows live values,
and `siren`), and `wiregate run` with an alarm and a homeassistant: section. It waits for HA's
birth on homeassistant/status and for binary_sensor.front_door_door in /api/states. With --url it
uses that running HA instead (--token, for the registry lookup, defaults to none: then pass
--device-id). Either way it then starts headless Chromium, drives it over the Chrome DevTools
Protocol: opens HA, types test/test into HA's own login form (inside ha-authorize's shadow DOM)
and presses Enter, navigates inside the app to /config/devices/device/<id of the board>, waits for
the page to show the board's entities, and writes Page.captureScreenshot's PNG to --out. On
failure it writes what the browser showed to OUT.failed.png and the page's text to stderr.
Everything it started is stopped and the temp dir removed (--keep leaves the dir, for its logs).

Needs: .build/debug/wiregate (built), .build/ha-venv (scripts/homeassistant-venv.sh; aiohttp comes
with it), mosquitto and mosquitto_sub, mkpasswd (package whois), and Debian's chromium
(`apt-get install -y chromium`; tried with 156.0.8078.114-1~deb12u1, binary /usr/bin/chromium,
override with --chromium). Takes about 20s on 2 cores, most of it HA starting.
"""
import argparse
import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(REPO, ".build", "ha-venv")
WIREGATE = os.path.join(REPO, ".build", "debug", "wiregate")
sys.path.insert(0, HERE)
import registry  # noqa: E402  (scripts/homeassistant/registry.py)

# Walks every shadow root: HA's frontend is web components all the way down.
JS_HELPERS = r"""
window.__deepAll = function (selector, root) {
  const out = [];
  (function walk(node) {
    node.querySelectorAll(selector).forEach(e => out.push(e));
    node.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot); });
  })(root || document);
  return out;
};
window.__deepText = function (root) {
  let text = '';
  (function walk(node) {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) text += child.textContent + ' ';
      else if (child.nodeType === Node.ELEMENT_NODE) {
        if (child.shadowRoot) walk(child.shadowRoot);
        if (!['STYLE', 'SCRIPT'].includes(child.tagName)) walk(child);
      }
    }
  })(root || document);
  return text.replace(/\s+/g, ' ').trim();
};
true;
"""


def log(message: str) -> None:
    print(f"screenshot.py: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:  # not up yet
            pass
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


class Processes:
    """Children started here, each in its own session; stopped by PID, last first."""

    def __init__(self):
        self.children = []

    def start(self, name, argv, log_path, **kwargs):
        with open(log_path, "w") as out:
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, **kwargs)
        self.children.append((name, child))
        return child

    def stop_all(self):
        for name, child in reversed(self.children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    log(f"{name} ignored SIGTERM, killing")
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
        self.children.clear()


def start_world(tmp: str, procs: Processes) -> tuple:
    """mosquitto, HA, two boards, the gateway. Returns (HA URL, bearer token)."""
    mqtt, http = free_port(), free_port()
    procs.start("mosquitto", ["mosquitto", "-p", str(mqtt)], os.path.join(tmp, "mosq.log"))
    wait_for("mosquitto", lambda: socket.create_connection(("127.0.0.1", mqtt), 1).close() or True, 10)
    # Subscribed before HA starts: its birth `online` is not retained.
    birth = subprocess.Popen(["mosquitto_sub", "-p", str(mqtt), "-t", "homeassistant/status",
                              "-C", "1", "-W", "180"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)

    ha_dir = os.path.join(tmp, "ha")
    token = subprocess.run(
        [os.path.join(VENV, "bin", "python"), os.path.join(HERE, "prepare.py"), ha_dir,
         "--mqtt-port", str(mqtt), "--http-port", str(http)],
        check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    procs.start("hass", [os.path.join(VENV, "bin", "hass"), "-c", ha_dir, "--skip-pip"],
                os.path.join(tmp, "ha.log"))

    # The door board: its door opens and closes, motion comes and goes, temperature drifts.
    lines = []
    for door, motion, temp in [("closed", 0, "21.5"), ("open", 1, "21.6"),
                               ("closed", 0, "21.7"), ("open", 0, "21.6")]:
        lines += [f"door={door}", f"motion={motion}", "smoke=0", f"temperature={temp}", "battery=87"]
    with open(os.path.join(tmp, "lines"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(tmp, "sirenlines"), "w") as f:
        f.write("siren=off\n")
    board, siren = os.path.join(tmp, "board"), os.path.join(tmp, "siren")
    procs.start("front-door board", [WIREGATE, "simulate", "--protocol", "kv", "--file",
                os.path.join(tmp, "lines"), "--rate", "2", "--link", board], os.path.join(tmp, "sim.log"))
    procs.start("siren board", [WIREGATE, "simulate", "--protocol", "kv", "--file",
                os.path.join(tmp, "sirenlines"), "--rate", "0.2", "--link", siren],
                os.path.join(tmp, "siren.log"))
    wait_for("the simulated boards' links", lambda: os.path.exists(board) and os.path.exists(siren), 10)

    code_hash = subprocess.run(["mkpasswd", "-m", "yescrypt", "--stdin"], input="1234\n",
                               check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    config = os.path.join(tmp, "wiregate.yaml")
    with open(config, "w") as f:
        f.write(f"""\
gateway: {{ id: house, state_dir: {tmp}/state }}
mqtt: {{ host: 127.0.0.1, port: {mqtt}, base_topic: wiregate }}
boards:
  - {{ name: front-door, match: {{ path: {board} }}, protocol: kv, settle: 0s, classes: {{ door: critical }} }}
  - {{ name: siren, match: {{ path: {siren} }}, protocol: kv, settle: 0s, commands: ["SIREN=ON", "SIREN=OFF", "CHIME=1", "CHIME=0"] }}
alarm:
  zones: [ {{ name: front, board: front-door, key: door, open: [open], type: delayed }} ]
  sirens: [ {{ board: siren, on: "SIREN=ON", off: "SIREN=OFF" }} ]
  codes: [ {{ name: owner, hash: '{code_hash}' }} ]
  exit_delay: 1s
  entry_delay: 2s
  allow_disarm_without_tls: true
homeassistant:
  republish_delay: 1s
  entities:
    - {{ board: siren, key: chime, component: siren, command_on: "CHIME=1", command_off: "CHIME=0" }}
""")
    procs.start("wiregate", [WIREGATE, "run", "--config", config], os.path.join(tmp, "gw.log"))

    url = f"http://127.0.0.1:{http}"
    try:
        out, _ = birth.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        birth.kill()
        out = ""
    if out.strip() != "online":
        raise RuntimeError(f"no birth from HA on homeassistant/status (see {tmp}/ha.log)")
    log(f"HA is up at {url}")

    def entity_there():
        request = urllib.request.Request(f"{url}/api/states",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            states = json.load(answer)
        return any(s["entity_id"] == "binary_sensor.front_door_door" for s in states)

    wait_for("binary_sensor.front_door_door in /api/states", entity_there, 120, 1)
    return url, token


def device_id_of(url: str, token: str, name: str) -> str:
    document = asyncio.run(registry.fetch(url, token))
    ids = [d["id"] for d in document["devices"] if name in (d.get("name_by_user"), d.get("name"))]
    if len(ids) != 1:
        names = [d.get("name") for d in document["devices"]]
        raise RuntimeError(f"{len(ids)} devices named {name!r}; the devices: {names}")
    return ids[0]


class Page:
    """The few Chrome DevTools Protocol calls needed, over one page target's websocket."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        msg_id = next(self.ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, what: str, expression: str, timeout: float):
        """Polls a JS expression (helpers reinstalled each time: navigations drop them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self.js(JS_HELPERS)
                value = await self.js(expression)
                if value:
                    return value
            except RuntimeError:
                pass  # mid-navigation
            await asyncio.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")

    async def key(self, key: str, code: int, text: str = ""):
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                            windowsVirtualKeyCode=code, nativeVirtualKeyCode=code,
                            **({"text": text} if text and kind == "keyDown" else {}))

    async def screenshot(self, path: str):
        shot = await self.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))


async def drive(debug_port: int, url: str, device_id: str, device_name: str, out: str,
                width: int, height: int, settle: float):
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list"))
    target = next(t for t in targets if t.get("type") == "page")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Runtime.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                            deviceScaleFactor=1, mobile=False)
            try:
                await page.call("Page.navigate", url=url + "/")
                # HA redirects to /auth/authorize; the form's inputs are in shadow roots.
                await page.until("HA's login form", "__deepAll('input[type=password]').length > 0", 60)
                for selector, value in [("input[autocomplete=username], input[name=username]", "test"),
                                        ("input[type=password]", "test")]:
                    found = await page.js(f"""(() => {{
                        const el = __deepAll({json.dumps(selector)})[0];
                        if (!el) return false; el.focus(); return true; }})()""")
                    if not found:
                        raise RuntimeError(f"no {selector} in the login form")
                    await page.call("Input.insertText", text=value)  # as typed: real input events
                await page.key("Enter", 13, "\r")
                log("login submitted")
                await page.until("the logged-in frontend",
                                 "location.pathname.indexOf('/auth') !== 0 && "
                                 "!!document.querySelector('home-assistant')?.hass?.user", 60)
                log("logged in as test")
                path = f"/config/devices/device/{device_id}"
                # In-app navigation, as HA's own navigate() does it: a reload would ask to log in
                # again unless "keep me logged in" was ticked. The frontend routes / to its
                # default dashboard once it has loaded, possibly after a first navigation here,
                # so wait for that, and navigate again whenever the location is not the page.
                await page.until("the default dashboard",
                                 "location.pathname.startsWith('/lovelace')", 60)
                await page.until(
                    "the device page with its entities",
                    f"""(() => {{
                        if (location.pathname !== {json.dumps(path)}) {{
                          history.pushState(null, '', {json.dumps(path)});
                          window.dispatchEvent(new CustomEvent('location-changed', {{detail: {{replace: false}}}}));
                          return false;
                        }}
                        const p = __deepAll('ha-config-device-page')[0];
                        if (!p) return false;
                        const t = __deepText(p.shadowRoot || p);
                        return t.includes({json.dumps(device_name)}) && t.includes('Door')
                            && t.includes('Temperature'); }})()""", 60)
                await asyncio.sleep(settle)  # icons, history graphs, live values
                # Integration logos come from https://brands.home-assistant.io: offline, each is a
                # broken-image glyph. Hide those (the space they take stays).
                hidden = await page.js("""__deepAll('img').filter(i => i.complete && !i.naturalWidth)
                    .map(i => { i.style.visibility = 'hidden'; return i.src; })""")
                if hidden:
                    log(f"hid images that did not load: {hidden}")
                await page.screenshot(out)
            except Exception:
                try:
                    await page.screenshot(out + ".failed.png")
                    text = await page.js("window.__deepText ? __deepText() : document.body.innerText")
                    log(f"page at failure ({await page.js('location.href')}): {str(text)[:2000]}")
                    log(f"what the browser showed: {out}.failed.png")
                except Exception as error:
                    log(f"could not capture the failure: {error!r}")
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "homeassistant-device.png"))
    parser.add_argument("--url", help="an HA already running (default: start one)")
    parser.add_argument("--token", help="with --url: a bearer token, to look up the device id")
    parser.add_argument("--device-id", help="with --url: the device's id, instead of --token")
    parser.add_argument("--device", default="front-door", help="the board's name (default front-door)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--size", default="1280x900", help="viewport WIDTHxHEIGHT")
    parser.add_argument("--settle", type=float, default=5, help="seconds to let the page render")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (its logs)")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="wiregate-ha-shot.")
    procs = Processes()
    try:
        if args.url:
            url, token = args.url.rstrip("/"), args.token
        else:
            url, token = start_world(tmp, procs)
        device_id = args.device_id or device_id_of(url, token, args.device)
        log(f"device {args.device}: {device_id}")

        debug_port = free_port()
        procs.start("chromium", [args.chromium, "--headless=new", f"--remote-debugging-port={debug_port}",
                                 "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
                                 f"--window-size={width},{height}", f"--user-data-dir={tmp}/chromium",
                                 "about:blank"], os.path.join(tmp, "chromium.log"),
                    env={**os.environ, "TMPDIR": tmp})  # its org.chromium.Chromium.* dirs go too
        wait_for("chromium's DevTools port", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{debug_port}/json/version", timeout=2).read(), 30)
        asyncio.run(drive(debug_port, url, device_id, args.device, out, width, height, args.settle))
        log(f"wrote {out} in {time.monotonic() - started:.0f}s")
    except Exception as error:
        log(f"failed: {error}")
        sys.exit(1)
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

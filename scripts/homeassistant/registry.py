#!/usr/bin/env python3
"""Prints Home Assistant's device and entity registries as one JSON document.

    .build/ha-venv/bin/python scripts/homeassistant/registry.py URL TOKEN

URL is HA's base URL (http://127.0.0.1:M), TOKEN the bearer prepare.py printed. Output:
{"devices": [...], "entities": [...]}, the results of the websocket commands
config/device_registry/list and config/entity_registry/list as HA returns them.
Needs aiohttp (in the venv). Exits 1 with the reason on stderr if auth or a command fails.
"""
import asyncio
import json
import sys

import aiohttp


async def fetch(url: str, token: str) -> dict:
    ws_url = url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    ws_url += "/api/websocket"
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            hello = await ws.receive_json()
            if hello.get("type") != "auth_required":
                raise RuntimeError(f"unexpected greeting: {hello}")
            await ws.send_json({"type": "auth", "access_token": token})
            answer = await ws.receive_json()
            if answer.get("type") != "auth_ok":
                raise RuntimeError(f"authentication failed: {answer}")

            result = {}
            for msg_id, (key, command) in enumerate(
                [("devices", "config/device_registry/list"),
                 ("entities", "config/entity_registry/list")],
                start=1,
            ):
                await ws.send_json({"id": msg_id, "type": command})
                while True:
                    msg = await ws.receive_json()
                    if msg.get("id") == msg_id and msg.get("type") == "result":
                        break
                if not msg.get("success"):
                    raise RuntimeError(f"{command} failed: {msg.get('error')}")
                result[key] = msg["result"]
            return result


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} URL TOKEN")
    try:
        document = asyncio.run(fetch(sys.argv[1], sys.argv[2]))
    except (RuntimeError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        print(f"registry.py: {error!r}", file=sys.stderr)
        sys.exit(1)
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

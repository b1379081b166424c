#!/usr/bin/env python3
"""Writes a Home Assistant 2024.3.3 config dir that starts straight onto a private broker.

    prepare.py CONFIG_DIR --mqtt-port N --http-port M [--discovery-prefix homeassistant]

Writes configuration.yaml (http on 127.0.0.1:M, metric, UTC) and, in .storage/, an mqtt config
entry (127.0.0.1:N, discovery on, birth `online` on homeassistant/status), onboarding marked done,
an owner user `test` / password `test` (for a person or a headless browser to log in) and a
long-lived access token, whose bearer JWT is printed on stdout. Then run
`.build/ha-venv/bin/hass -c CONFIG_DIR --skip-pip` and watch its log for "Activating recovery mode".

Stdlib only (runs under /usr/bin/python3 or the venv's); the password hash uses the bcrypt package
when importable, else libcrypt's bcrypt ($2b$), which HA's bcrypt.checkpw accepts.
The storage formats are HA 2024.3.3's: homeassistant/auth/auth_store.py (auth, version 1),
auth/providers/homeassistant.py (auth_provider.homeassistant, version 1), config_entries.py
(core.config_entries, version 1), components/onboarding (onboarding, version 4).
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import uuid
import warnings

HA_VERSION = "2024.3.3"
USERNAME = "test"
PASSWORD = "test"
TOKEN_CLIENT_NAME = "wiregate tests"
TOKEN_LIFETIME = 3650 * 86400  # what HA's profile page offers: ten years
GROUP_ID_ADMIN = "system-admin"


def bcrypt_b64(password: str) -> str:
    """HA stores base64(bcrypt hash). Cost 4: a test password, checked fast at each login."""
    try:
        import bcrypt

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4))
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)).encode()
        if not hashed.startswith(b"$2"):
            sys.exit("prepare.py: this libcrypt has no bcrypt; run with .build/ha-venv/bin/python")
    return base64.b64encode(hashed).decode()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_jwt(claims: dict, key: str) -> str:
    """What homeassistant/auth/__init__.py async_create_access_token makes with PyJWT."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def store(key: str, version: int, data: dict, minor_version: int = 1) -> dict:
    """The envelope of homeassistant/helpers/storage.py."""
    return {"version": version, "minor_version": minor_version, "key": key, "data": data}


def write_json(path: str, document: dict) -> None:
    with open(path, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    os.chmod(path, 0o600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_dir")
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--discovery-prefix", default="homeassistant")
    args = parser.parse_args()

    storage = os.path.join(args.config_dir, ".storage")
    os.makedirs(storage, exist_ok=True)

    # No default_config: it pulls cloud, bluetooth, zeroconf, ssdp, dhcp... that want the network
    # or packages not installed. The always-loaded integrations (bootstrap.DEFAULT_INTEGRATIONS,
    # with frontend, onboarding, config, websocket_api, api) come anyway.
    with open(os.path.join(args.config_dir, "configuration.yaml"), "w") as f:
        f.write(
            "homeassistant:\n"
            "  name: wiregate test\n"
            "  unit_system: metric\n"
            "  time_zone: UTC\n"
            "  latitude: 0\n"
            "  longitude: 0\n"
            "  elevation: 0\n"
            "  currency: EUR\n"
            "  country: DE\n"
            "http:\n"
            "  server_host: 127.0.0.1\n"
            f"  server_port: {args.http_port}\n"
            "api:\n"
            "websocket_api:\n"
            "frontend:\n"
            "config:\n"
            "logger:\n"
            "  default: info\n"
        )

    now = datetime.datetime.now(datetime.timezone.utc)
    user_id = uuid.uuid4().hex
    credential_id = uuid.uuid4().hex
    token_id = uuid.uuid4().hex
    jwt_key = secrets.token_hex(64)

    # System groups (admin, users, read-only) are added by HA itself when missing.
    auth = {
        "users": [
            {
                "id": user_id,
                "group_ids": [GROUP_ID_ADMIN],
                "is_owner": True,
                "is_active": True,
                "name": USERNAME,
                "system_generated": False,
                "local_only": False,
            }
        ],
        "groups": [{"id": GROUP_ID_ADMIN, "name": "Administrators"}],
        "credentials": [
            {
                "id": credential_id,
                "user_id": user_id,
                "auth_provider_type": "homeassistant",
                "auth_provider_id": None,
                "data": {"username": USERNAME},
            }
        ],
        "refresh_tokens": [
            {
                "id": token_id,
                "user_id": user_id,
                "client_id": None,
                "client_name": TOKEN_CLIENT_NAME,
                "client_icon": None,
                "token_type": "long_lived_access_token",
                "created_at": now.isoformat(),
                "access_token_expiration": float(TOKEN_LIFETIME),
                "token": secrets.token_hex(64),
                "jwt_key": jwt_key,
                "last_used_at": None,
                "last_used_ip": None,
                "expire_at": None,
                "credential_id": None,
                "version": HA_VERSION,
            }
        ],
    }
    write_json(os.path.join(storage, "auth"), store("auth", 1, auth))
    write_json(
        os.path.join(storage, "auth_provider.homeassistant"),
        store(
            "auth_provider.homeassistant",
            1,
            {"users": [{"username": USERNAME, "password": bcrypt_b64(PASSWORD)}]},
        ),
    )
    write_json(
        os.path.join(storage, "onboarding"),
        store("onboarding", 4, {"done": ["user", "core_config", "analytics", "integration"]}),
    )
    entry = {
        "entry_id": uuid.uuid4().hex,
        "version": 1,
        "minor_version": 1,
        "domain": "mqtt",
        "title": "127.0.0.1",
        "data": {
            "broker": "127.0.0.1",
            "port": args.mqtt_port,
            "discovery": True,
            "discovery_prefix": args.discovery_prefix,
            "birth_message": {
                "topic": "homeassistant/status",
                "payload": "online",
                "qos": 0,
                "retain": False,
            },
        },
        "options": {},
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "unique_id": None,
        "disabled_by": None,
    }
    write_json(
        os.path.join(storage, "core.config_entries"),
        store("core.config_entries", 1, {"entries": [entry]}),
    )

    iat = int(time.time())
    print(hs256_jwt({"iss": token_id, "iat": iat, "exp": iat + TOKEN_LIFETIME}, jwt_key))


if __name__ == "__main__":
    main()

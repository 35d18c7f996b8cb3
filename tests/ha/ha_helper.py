"""Talks to a throwaway Home Assistant core for tests/ha.rs (run with the HA venv's Python).

    ha_helper.py onboard URL BROKER_PORT MQTT_USER MQTT_PASSWORD
        Onboards (the owner user through /api/onboarding/users, a token through /auth/token),
        makes a long-lived token over the websocket, adds the MQTT integration through its
        config flow (/api/config/config_entries/flow, handler "mqtt"), and prints
        {"token": "<long-lived token>"}.
    ha_helper.py registry URL TOKEN
        Prints {"devices": [...], "entities": [...]} from the device and entity registries
        (the websocket API: the REST API has no registry).

Errors go to stderr with the response that caused them, exit status 1.
"""

import asyncio
import json
import sys

import aiohttp


def fail(what, detail):
    print(f"ha_helper: {what}: {detail}", file=sys.stderr)
    sys.exit(1)


async def ws_call(session, url, token, calls):
    """Authenticate on the websocket, then send each (type, fields) and collect results."""
    ws_url = url.replace("http://", "ws://") + "/api/websocket"
    out = []
    async with session.ws_connect(ws_url) as ws:
        hello = await ws.receive_json()
        if hello.get("type") != "auth_required":
            fail("websocket hello", hello)
        await ws.send_json({"type": "auth", "access_token": token})
        ok = await ws.receive_json()
        if ok.get("type") != "auth_ok":
            fail("websocket auth", ok)
        for i, (kind, fields) in enumerate(calls, start=1):
            await ws.send_json({"id": i, "type": kind, **fields})
            while True:
                msg = await ws.receive_json()
                if msg.get("id") == i and msg.get("type") == "result":
                    break
            if not msg.get("success"):
                fail(kind, msg)
            out.append(msg["result"])
    return out


async def onboard(url, broker_port, mqtt_user, mqtt_password):
    client_id = url + "/"
    async with aiohttp.ClientSession() as s:
        r = await s.post(
            url + "/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Test Owner",
                "username": "owner",
                "password": "owner-password-1",
                "language": "en",
            },
        )
        body = await r.text()
        if r.status != 200:
            fail("onboarding user", f"{r.status} {body}")
        code = json.loads(body)["auth_code"]
        r = await s.post(
            url + "/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
        )
        body = await r.text()
        if r.status != 200:
            fail("auth token", f"{r.status} {body}")
        access = json.loads(body)["access_token"]
        [token] = await ws_call(
            s,
            url,
            access,
            [("auth/long_lived_access_token", {"client_name": "gemmaedge-test", "lifespan": 1})],
        )
        headers = {"Authorization": f"Bearer {token}"}
        r = await s.post(
            url + "/api/config/config_entries/flow",
            json={"handler": "mqtt", "show_advanced_options": False},
            headers=headers,
        )
        flow = await r.json()
        if r.status != 200 or flow.get("type") != "form":
            fail("mqtt config flow", f"{r.status} {flow}")
        r = await s.post(
            url + f"/api/config/config_entries/flow/{flow['flow_id']}",
            json={
                "broker": "127.0.0.1",
                "port": broker_port,
                "username": mqtt_user,
                "password": mqtt_password,
            },
            headers=headers,
        )
        done = await r.json()
        if r.status != 200 or done.get("type") != "create_entry":
            fail("mqtt config flow (broker step)", f"{r.status} {done}")
        print(json.dumps({"token": token}))


async def registry(url, token):
    async with aiohttp.ClientSession() as s:
        devices, entities = await ws_call(
            s, url, token, [("config/device_registry/list", {}), ("config/entity_registry/list", {})]
        )
    print(json.dumps({"devices": devices, "entities": entities}))


def main(argv):
    if len(argv) == 6 and argv[1] == "onboard":
        asyncio.run(onboard(argv[2].rstrip("/"), int(argv[3]), argv[4], argv[5]))
    elif len(argv) == 4 and argv[1] == "registry":
        asyncio.run(registry(argv[2].rstrip("/"), argv[3]))
    else:
        fail("usage", __doc__)


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Echo bot on the umbra daemon API (docs/API.md). Usage: echo_bot.py PROFILE/daemon.sock"""
import json, socket, sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
lines = sock.makefile("r", encoding="utf-8")
send = lambda obj: sock.sendall((json.dumps(obj) + "\n").encode())
send({"jsonrpc": "2.0", "id": 0, "method": "subscribe"})
for n, line in enumerate(lines, start=1):
    msg = json.loads(line)
    ev = msg.get("params", {}) if msg.get("method") == "event" else {}
    if ev.get("type") == "message" and ev.get("direction") == "in":
        send({"jsonrpc": "2.0", "id": n, "method": "send",
              "params": {"to": ev["peer"], "text": "echo: " + ev["text"]}})
    elif "error" in msg:
        print("error:", msg["error"]["message"], file=sys.stderr)

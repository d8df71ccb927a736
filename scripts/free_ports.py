#!/usr/bin/env python3
"""Prints COUNT distinct TCP ports free on loopback right now, picked at random in LOW-HIGH
(default 24000-29999: below the ephemeral range, as scripts/lib.sh's fixed ports are, so no client
socket can take one meanwhile). For a test's own broker, database or services.
    scripts/free_ports.py COUNT [LOW-HIGH]"""
import random
import socket
import sys

count = int(sys.argv[1])
low, high = (int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "24000-29999").split("-"))
if high - low + 1 < count:
    sys.exit(f"free_ports.py: {low}-{high} holds fewer than {count} ports")
ports = []
for _ in range(100 * count):
    if len(ports) == count:
        break
    p = random.randint(low, high)
    if p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
if len(ports) < count:
    sys.exit(f"free_ports.py: found only {len(ports)} free ports in {low}-{high}")
print(*ports)

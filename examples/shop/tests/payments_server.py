"""A real payments API for the real-Celery test: HTTP on 127.0.0.1, a ledger of charges,
idempotency keys honoured as the simulated one honours them.

It announces on stdout every request it receives (``request ORDER KEY``) and every
charge it makes (``charged ORDER CHARGE_ID``), so the harness waits for progress, never
for time. With ``--hold-first`` it holds the reply to its first charge until a line
arrives on stdin: the harness kills the worker in that window, after the charge and
before the task could read the reply, mark the order paid or acknowledge the message.

    python payments_server.py --ledger ledger.jsonl [--hold-first]
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--hold-first", action="store_true")
    options = parser.parse_args()
    charges: list[dict] = []
    by_key: dict[str, dict] = {}
    held = [not options.hold_first]

    class Payments(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            key = self.headers.get("Idempotency-Key")
            print(f"request {body.get('order')} {key}", flush=True)
            if key is not None and key in by_key:
                return self._answer(by_key[key])
            charge = {"id": f"ch_{len(charges) + 1}", "order": body.get("order"), "key": key,
                      "amount_cents": body.get("amount_cents")}
            charges.append(charge)
            with open(options.ledger, "a", encoding="utf-8") as ledger:
                ledger.write(json.dumps(charge) + "\n")
            if key is not None:
                by_key[key] = charge
            print(f"charged {charge['order']} {charge['id']}", flush=True)
            if not held[0]:
                held[0] = True
                sys.stdin.readline()  # the harness kills the worker, then releases us
            self._answer(charge)

        def _answer(self, charge: dict) -> None:
            data = json.dumps({"id": charge["id"]}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client died waiting: the charge stands, the reply is lost

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Payments)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""`python -m emulators.bureau [--host H] [--port N]`: serve the credit-bureau emulator.

The port defaults to the BUREAU_EMULATOR_PORT setting (8200).
"""
from __future__ import annotations

import argparse
import logging
import sys

from werkzeug.serving import make_server

from emulators.bureau.api import create_app
from sunshine.settings import ConfigError, load


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m emulators.bureau", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.bureau_emulator_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = make_server(args.host, args.port, create_app(), threaded=True)
    print(f"credit-bureau emulator on http://{args.host}:{args.port} (POST /v1/reports)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

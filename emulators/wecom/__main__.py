"""`python -m emulators.wecom [--host H] [--port N]`: serve the WeCom API emulator.

The port defaults to the WECOM_EMULATOR_PORT setting (8300).
"""

import sys

from emulators import serve_main
from emulators.wecom.api import create_app

if __name__ == "__main__":
    sys.exit(
        serve_main(
            "python -m emulators.wecom",
            __doc__.splitlines()[0],
            create_app,
            lambda s: s.wecom_emulator_port,
            "WeCom API emulator (POST /cgi-bin/message/send)",
        )
    )

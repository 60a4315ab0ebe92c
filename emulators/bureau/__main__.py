"""`python -m emulators.bureau [--host H] [--port N]`: serve the credit-bureau emulator.

The port defaults to the BUREAU_EMULATOR_PORT setting (8200).
"""

import sys

from emulators import serve_main
from emulators.bureau.api import create_app

if __name__ == "__main__":
    sys.exit(
        serve_main(
            "python -m emulators.bureau",
            __doc__.splitlines()[0],
            lambda s: create_app(),
            lambda s: s.bureau_emulator_port,
            "credit-bureau emulator (POST /v1/reports)",
        )
    )

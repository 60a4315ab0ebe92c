"""`python -m emulators.corebank [--host H] [--port N]`: serve the core-banking emulator.

The port defaults to the CORE_BANKING_EMULATOR_PORT setting (8500); the channel and its
signing secret are CORE_BANKING_CHANNEL_ID and CORE_BANKING_SECRET, as the client's.
"""

import sys

from emulators import serve_main
from emulators.corebank.api import create_app

if __name__ == "__main__":
    sys.exit(
        serve_main(
            "python -m emulators.corebank",
            __doc__.splitlines()[0],
            lambda s: create_app(s.core_banking_channel_id, s.core_banking_secret),
            lambda s: s.core_banking_emulator_port,
            "core-banking emulator (/open/v1/...)",
        )
    )

"""`python -m emulators.sms [--host H] [--port N]`: serve the SMS-gateway emulator.

The port defaults to the SMS_EMULATOR_PORT setting (8400).
"""

import sys

from emulators import serve_main
from emulators.sms.api import create_app

if __name__ == "__main__":
    sys.exit(
        serve_main(
            "python -m emulators.sms",
            __doc__.splitlines()[0],
            create_app,
            lambda s: s.sms_emulator_port,
            "SMS-gateway emulator (POST /v1/sms/send)",
        )
    )

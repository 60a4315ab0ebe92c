"""`python -m emulators.faceid [--host H] [--port N]`: serve the face-verification service emulator.

The port defaults to the FACEID_EMULATOR_PORT setting (8600); it accepts the credentials
FACEID_SECRET_ID / FACEID_SECRET_KEY.
"""

import sys

from emulators import serve_main
from emulators.faceid.api import create_app

if __name__ == "__main__":
    sys.exit(
        serve_main(
            "python -m emulators.faceid",
            __doc__.splitlines()[0],
            lambda s: create_app({s.faceid_secret_id: s.faceid_secret_key}),
            lambda s: s.faceid_emulator_port,
            "face-verification (人脸核身) emulator (POST / ImageRecognitionV2)",
        )
    )

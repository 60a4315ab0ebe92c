"""`python -m emulators.wechat [--host H] [--port N]`: serve the WeChat API emulator.

The port defaults to the WECHAT_EMULATOR_PORT setting (8100); the accounts it
knows are WECHAT_APPID/WECHAT_SECRET and WXA_APPID/WXA_SECRET.
"""

import sys

from emulators import serve_main
from emulators.wechat.api import create_app

if __name__ == "__main__":
    sys.exit(
        serve_main(
            "python -m emulators.wechat",
            __doc__.splitlines()[0],
            create_app,
            lambda s: s.wechat_emulator_port,
            "WeChat API emulator (messages: /_emulator/messages?touser=OPENID)",
        )
    )

"""WeChat, emulated: its API servers (`api`), and a follower of the Official
Account sending messages to the bank's webhook as WeChat does (`user`, `chat`).
"""

"""Clients of the systems the bank does not run here (WeChat, the credit
bureau, Rasa). Each takes its base URL from settings, so the same code talks
to the real host in production and to `emulators` in development and tests.
"""

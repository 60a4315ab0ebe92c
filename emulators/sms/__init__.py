"""The bank's SMS gateway, emulated (`python -m emulators.sms`)."""

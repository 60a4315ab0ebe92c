"""The bank core's open API, emulated (`python -m emulators.corebank`)."""

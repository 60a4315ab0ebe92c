"""The credit bureau's personal credit-report API, emulated (`python -m emulators.bureau`)."""

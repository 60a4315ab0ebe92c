"""Emulator of WeCom's (企业微信) server API for officer notifications."""

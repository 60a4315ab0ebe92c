"""Shared infrastructure of the Sunshine Credit Assistant: settings, database,
Redis, personal-data protection and the process launcher."""

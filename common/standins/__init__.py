"""Loopback stand-ins for the services the integrations call, for the demo and the tests."""

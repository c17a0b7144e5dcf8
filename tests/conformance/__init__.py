"""Conformance tier: our GitHub requests checked by Prism against GitHub's OpenAPI description."""

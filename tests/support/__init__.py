"""Helpers shared by the test tiers: where ../shared is, and how a tier says it cannot run."""

"""Loopback stand-ins that only the tests use (Slack, GitLab), each following its service's documented API.

The GitHub stand-in stays in ``common.standins`` because the demo runs it.
"""

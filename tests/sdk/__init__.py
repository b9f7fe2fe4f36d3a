"""Tests of the Python SDK (sdk/verifact) against the real app, a real server and scripted transports."""

"""The management surface: plughost's HTTP API (plus CLIProxyAPI's and Jank's) served by `plughost run`.

Needs the `manage` extra (`pip install 'plughost[manage]'`): FastAPI and prometheus-client.
"""

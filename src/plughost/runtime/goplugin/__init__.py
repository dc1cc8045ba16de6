"""The hashicorp/go-plugin protocol: launch, handshake, connection, logs and values.

`plughost.runtime.process` builds the process runtime on these parts; `plughost.runtime.worker`
is the server side (a go-plugin server written in Python).
"""

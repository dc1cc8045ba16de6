"""OneBot v11 adapter: forward/reverse WebSocket, HTTP POST events in, HTTP API actions out."""

from plughost.adapters.onebot.adapter import OneBotAdapter
from plughost.adapters.onebot.client import HttpActionClient, WsActionClient

__all__ = ["HttpActionClient", "OneBotAdapter", "WsActionClient"]

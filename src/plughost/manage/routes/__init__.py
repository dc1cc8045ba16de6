"""The management API's routers, one module per area."""

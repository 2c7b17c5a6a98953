"""Arrow Flight SQL protocol server for the gateway."""

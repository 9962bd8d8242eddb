"""Job handlers: one module per job kind. See `lab/runtime/handlers.py` for the contract."""

"""Job handlers: one module per job kind. See `lab/handlers.py` for the contract."""

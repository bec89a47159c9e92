"""Secret values in the client: sealing and opening on workers, the masked field, tree marks."""

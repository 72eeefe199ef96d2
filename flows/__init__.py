"""One module per deployable flow."""

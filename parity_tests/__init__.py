"""The JAX-vs-PyTorch parity suite; its tables and bounds serve ``scripts/check_parity.py`` too."""

# The real batches of the parity checks (the suite's and check_parity.py's) come from training
# lists cut at 200 ratings: every feature they need (tied labels, lengths 1 to 200, padding)
# at about a quarter of the default's widest list (737), which keeps the suite quick.
PARITY_LIST_SIZE = 200

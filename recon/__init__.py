"""recon: reconcile Nexudus billing with Xero books from Jupyter."""

__version__ = "0.1.0"

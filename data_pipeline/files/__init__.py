"""Task files: listing and describing them, safe downloads, table lists and user uploads."""

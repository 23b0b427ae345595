"""Calendar connectors: provider calendars in, busy intervals out."""

"""Single-use call links: the customer's door to a live call for one ticket."""

"""Skills (and languages, tiers): what tickets need and agents have."""

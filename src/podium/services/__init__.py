"""One service per capability; services hold the logic that dialects share."""

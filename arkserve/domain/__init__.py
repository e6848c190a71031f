"""Pure domain core: specs, replica states, routing snapshots and planning. No I/O here."""

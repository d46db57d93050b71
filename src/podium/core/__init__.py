"""The leaf: small pieces every layer shares (today the bounds of numeric options); it imports
nothing of podium but `podium.errors`."""

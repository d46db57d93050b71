"""Due diligence: five analysts review a company dossier at once, a synthesis agent writes the
investment memo, and a missing analyst is named as a gap. See README.md."""

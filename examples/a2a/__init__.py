"""Two organisations' agents over A2A: a buyer's workflow calls a supplier's quoting desk,
served by another podium process. See README.md."""

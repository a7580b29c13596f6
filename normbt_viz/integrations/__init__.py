"""Bridges to the tools reward models are already trained with (TRL); each imports its tool only when used."""

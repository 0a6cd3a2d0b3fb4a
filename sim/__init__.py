"""A deterministic simulation of the whole pipeline on a virtual clock, at production time
constants."""

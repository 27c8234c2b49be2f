"""Scoring answers: EM and the F1s, and which language an answer is in."""

"""Deployment search: the discretized decision space (space.py), its integer-scaled evaluation (table.py),
the CP-SAT model (cpsat.py) and the exhaustive oracle (oracle.py) that tests check it against."""

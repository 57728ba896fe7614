"""Side-by-side benchmark of civicfeed against lemon24/reader and the floor; see run.py."""

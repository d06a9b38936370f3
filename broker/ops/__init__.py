"""The operations centre: the current picture of each case, folded from the alerts received."""

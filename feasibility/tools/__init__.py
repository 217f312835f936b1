"""Tools around the checker: the cross-solver audit and text embedding."""

"""How an instance is decided: cvxpy programs, the structured interior-point
method, closed-form fast paths, and the active-set loop that certifies."""

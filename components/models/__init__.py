"""Network families, each with its search space beside it, and the rule that picks a family."""

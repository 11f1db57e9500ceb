"""Memory: the planner's prediction of what a model's checks need (and its refusals), and the
measured peak the memory check compares with it."""

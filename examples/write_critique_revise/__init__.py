"""Write, critique, revise: a `Loop` that revises a draft until a critic approves it."""

"""The verification pipeline: judges that turn a claim and its evidence into a verdict.

Importing this package is cheap: the openai client loads only with `graph.llm_judge`.
"""

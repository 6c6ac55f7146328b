"""The vessel tools: trace, segment, topology review, measurements and the workspace summary."""

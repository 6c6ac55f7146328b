"""Vessel geometry on a mask: the graph, tracing along a ridge, topology findings, measurements."""

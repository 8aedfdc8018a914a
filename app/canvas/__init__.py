"""The painting canvas: a zoomable view of one stage and the tools that paint its artist layer."""

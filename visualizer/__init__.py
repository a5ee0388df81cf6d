"""bpttlab visualizer: the Dash app."""

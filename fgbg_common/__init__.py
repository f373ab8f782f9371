"""What every fgbg package shares and imports from nowhere else: the registry type of the
pluggable concepts (`registry.Registry`) and the argument checks (`checks`)."""

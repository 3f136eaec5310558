"""What the Blender and Nuke adapters share. :mod:`tcvom.hosts.client` is standard-library
only: it is copied into the Blender extension and the Nuke plugin, whose Pythons have no
tcvom installed."""
